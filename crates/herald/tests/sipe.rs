//! Acceptance test of issue 6: two real Lync clients (SIPE, the pidgin-sipe plugin driven
//! headless inside finch) sign in to `herald serve` over TLS with NTLM and see each other's
//! presence change live.
//!
//! The work is done by `tests/sipe/run.sh` at the repository root (recipe:
//! `../shared/briefs/sipe-client.md` §7); this test runs it against the `herald` binary Cargo
//! built for the test run and fails when the script does. The script installs what it needs
//! with apt-get when run as root (pidgin-sipe, finch, libpurple-bin, dbus, tmux, gcc,
//! libxml2-dev), compiles the libxml2 shim from `../shared/tools/sipe/sax1shim.c`, starts
//! herald on loopback with a fresh data folder, two users who list each other, a private
//! D-Bus bus and a finch per user under a private tmux server, then asserts with purple-send:
//! sign-in through a completed NTLM handshake with signed responses, the contacts and their
//! display names, A's Busy / Do Not Disturb / Be Right Back / Away / Available reaching B
//! within 1 s, B's changes reaching A, and A's sign-out showing B that A is offline. On
//! failure it prints the clients' key debug-log lines, the SIP messages SIPE sent and
//! received, the finch screens and herald's log.
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
fn two_sipe_clients_sign_in_with_ntlm_and_see_each_others_presence() {
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
