//! AUTHENTICATE_MESSAGEs from the network: parsing never panics, and whatever parses can be
//! put through the acceptor (flag checks, NTLMv2 proof, MIC, key derivation) without panicking.
#![no_main]

use herald_ntlm::{AuthenticateMessage, ChallengeMessage, NtHash, ServerIdentity, accept};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = AuthenticateMessage::parse(data) else {
        return;
    };
    let Ok(identity) = ServerIdentity::new("EXAMPLE", "FE01", "example.test", "fe01.example.test")
    else {
        return;
    };
    let challenge = ChallengeMessage::new(&identity, [0x11; 8], None);
    let _ = accept(&challenge, &message, &NtHash::from_password("secret"));
});
