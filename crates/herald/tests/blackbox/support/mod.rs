//! What every black-box test module uses: the server process, a SIP client, an HTTP GET.

pub(crate) mod autodiscover;
pub(crate) mod dns;
pub(crate) mod http;
pub(crate) mod pool;
pub(crate) mod ports;
pub(crate) mod presence;
pub(crate) mod server;
pub(crate) mod sip;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU8, Ordering};

pub(crate) use server::{Server, Setup, shared};
pub(crate) use sip::{Account, Req, SipClient, Ua, assert_status, register_with_digest, show};

/// Waits until a running server has seen a directory change made by a CLI command: the server
/// checks the store's change token every 250 ms (and publishes gauges once a second).
pub(crate) fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(600));
}

/// A loopback source address no other test of this run uses (127.0.N.M): the server keys
/// throttling and connection limits by source address, so each test that cares gets its own.
pub(crate) fn fresh_loopback() -> IpAddr {
    static NEXT: AtomicU8 = AtomicU8::new(10);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    assert!(n < 250, "ran out of loopback addresses");
    IpAddr::V4(Ipv4Addr::new(127, 0, 7, n))
}

/// The `sipp` on PATH; missing, the test fails (`scripts/test.sh` installs Debian's sip-tester).
pub(crate) fn sipp_binary() -> std::path::PathBuf {
    tool_binary("sipp", "sip-tester")
}

/// The program `name` on PATH; missing, the test fails naming the Debian `package` that
/// `scripts/test.sh` installs for it.
pub(crate) fn tool_binary(name: &str, package: &str) -> std::path::PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name} is not installed: run `bash scripts/test.sh` (it installs Debian's \
             {package}), or `apt-get install {package}`"
        )
    })
}

/// The last `n` bytes of `text` (from a character boundary), for failure messages.
pub(crate) fn tail(text: &str, n: usize) -> &str {
    let start = text.len().saturating_sub(n);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}
