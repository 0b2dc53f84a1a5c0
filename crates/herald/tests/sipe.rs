//! Acceptance test of issue 6: two real Lync clients (SIPE, the pidgin-sipe plugin driven
//! headless inside finch) find `herald serve` by themselves, sign in over TLS with NTLM and see
//! each other's presence change live; a second Lync endpoint and a SIMPLE client (both SIPp,
//! Digest) interoperate with them.
//!
//! The work is done by `tests/sipe/run.sh` at the repository root (recipe:
//! `../shared/briefs/sipe-client.md` §7); this test runs it against the `herald` binary Cargo
//! built for the test run and fails when the script does. The script installs what it needs
//! with apt-get when run as root (pidgin-sipe, finch, libpurple-bin, dbus, tmux, gcc,
//! libxml2-dev, sip-tester, iproute2), compiles the libxml2 shim from
//! `../shared/tools/sipe/sax1shim.c`, and runs itself again inside a private network and mount
//! namespace (`unshare --net --mount`, so it needs root): loopback only, `/etc/resolv.conf`
//! naming herald's authoritative DNS on 127.0.0.1:53, autodiscover on HTTPS 127.0.0.1:443,
//! SIP over TLS on a port only discovery names. There it starts herald with a fresh data
//! folder, three users, a private D-Bus bus and a finch per SIPE user under a private tmux
//! server, then asserts:
//! - discovery, with the accounts' server setting empty: A through Lync autodiscover over
//!   HTTPS, B (whose autodiscover names lead nowhere) through DNS SRV, from their debug logs;
//! - sign-in through a completed NTLM handshake with signed responses, the contacts and their
//!   display names (purple-send);
//! - A's Busy / Do Not Disturb / Be Right Back / Away / Available reaching B within 1 s of A's
//!   publication, B's changes reaching A;
//! - Off Work, which SIPE cannot set: a second endpoint of A (SIPp, Digest) publishes userState
//!   15500 + `off-work` through SERVICE; B shows A away, with the token in what herald sent;
//! - a SIMPLE client (SIPp, Digest): its PIDF busy / away / removal shown by A's SIPE, and A's
//!   Busy / Available reaching its PIDF subscription within 1 s;
//! - A's sign-out showing B that A is offline and the SIMPLE watcher `<basic>closed</basic>`.
//!
//! On failure it names the step and prints the clients' key debug-log lines, the SIP messages
//! SIPE sent and received, SIPp's traces, the finch screens and herald's log.
//!
//! Run it with
//!
//! ```text
//! cargo test -p herald --test sipe -- --nocapture
//! ```
//!
//! or the script alone (it builds herald itself unless `HERALD` names a binary):
//!
//! ```text
//! HERALD=target/release/herald tests/sipe/run.sh
//! ```

use std::path::PathBuf;
use std::process::Command;

#[test]
fn sipe_clients_discover_herald_sign_in_with_ntlm_and_see_presence_with_lync_and_simple_peers() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = repo.join("tests/sipe/run.sh");
    assert!(script.exists(), "{} is missing", script.display());
    let status = Command::new("bash")
        .arg(&script)
        .env("HERALD", env!("CARGO_BIN_EXE_herald"))
        .current_dir(&repo)
        .status()
        .expect("running tests/sipe/run.sh");
    assert!(
        status.success(),
        "tests/sipe/run.sh failed ({status}); its output above says which step and why"
    );
}
