//! RFC 6120 §6 / RFC 4422 SASL through the stream: SCRAM vectors (RFC 5802 §5, RFC 7677 §3),
//! channel binding (RFC 5802 §6, RFC 9266), PLAIN (RFC 4616), OAUTHBEARER (RFC 7628), failures.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Digest;

use super::common::*;
use crate::scram::{derive_keys, ScramHash};
use crate::{ChannelBindings, Event, Mechanism, SaslCondition, StreamErrorCondition, Transport};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn b64d(s: &str) -> Vec<u8> {
    B64.decode(s).unwrap_or_else(|e| panic!("{e}"))
}

fn auth(mech: &str, data: &[u8]) -> String {
    format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mech}'>{}</auth>",
        B64.encode(data)
    )
}

fn response(data: &[u8]) -> String {
    format!(
        "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
        B64.encode(data)
    )
}

/// The data inside the one `<challenge>` of `t`.
fn challenge_data(t: &str) -> String {
    let start = t
        .find("<challenge")
        .unwrap_or_else(|| panic!("no challenge in {t}"));
    let rest = &t[start..];
    let open_end = rest.find('>').unwrap_or(0) + 1;
    let close = rest.find("</challenge>").unwrap_or(open_end);
    String::from_utf8(b64d(&rest[open_end..close])).unwrap_or_default()
}

fn success_data(t: &str) -> String {
    let start = t
        .find("<success")
        .unwrap_or_else(|| panic!("no success in {t}"));
    let rest = &t[start..];
    let open_end = rest.find('>').unwrap_or(0) + 1;
    let close = rest.find("</success>").unwrap_or(open_end);
    String::from_utf8(b64d(&rest[open_end..close])).unwrap_or_default()
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap_or_else(|_| panic!("key"));
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A SCRAM-SHA-256 client-final message (RFC 5802 §3) for the test client.
fn client_final_256(password: &str, server_first: &str, first_bare: &str, c: &[u8]) -> String {
    let mut parts = server_first.split(',');
    let r = parts.next().unwrap_or_default().trim_start_matches("r=");
    let s = b64d(parts.next().unwrap_or_default().trim_start_matches("s="));
    let i: u32 = parts
        .next()
        .unwrap_or_default()
        .trim_start_matches("i=")
        .parse()
        .unwrap_or(0);
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &s, i, &mut salted);
    let client_key = hmac256(&salted, b"Client Key");
    let stored = sha2::Sha256::digest(&client_key);
    let without = format!("c={},r={}", B64.encode(c), r);
    let auth_message = format!("{first_bare},{server_first},{without}");
    let sig = hmac256(&stored, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(sig.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    format!("{without},p={}", B64.encode(proof))
}

fn keys256(password: &str) -> crate::ScramKeys {
    derive_keys(password, b"saltsalt", 4096, ScramHash::Sha256).unwrap_or_else(|_| panic!("keys"))
}

#[test]
fn rfc5802_5_scram_sha1_example_through_the_stream() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send(&auth(
        "SCRAM-SHA-1",
        b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    ));
    assert_eq!(
        events(&out),
        vec![Event::NeedCredentials {
            username: "user".into(),
            mechanism: Mechanism::ScramSha1
        }]
    );
    h.s.set_scram_nonce_for_test("3rfcNHYJY1ZVvWVs7j");
    let keys = derive_keys("pencil", &b64d("QSXCR+Q6sek8bf92"), 4096, ScramHash::Sha1)
        .unwrap_or_else(|_| panic!("keys"));
    assert_eq!(h.s.provide_credentials(keys), Ok(()));
    let out = h.drain();
    assert_eq!(
        challenge_data(&text(&out)),
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    );
    let out = h.send(&response(
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    ));
    assert_eq!(success_data(&text(&out)), "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    assert_eq!(
        events(&out),
        vec![Event::Authenticated {
            username: "user".into(),
            mechanism: Mechanism::ScramSha1
        }]
    );
    assert_eq!(h.s.username(), Some("user"));
}

#[test]
fn rfc7677_3_scram_sha256_example_through_the_stream() {
    let mut h = Harness::new(Transport::WebSocket);
    h.open();
    h.send(&auth("SCRAM-SHA-256", b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
    h.s.set_scram_nonce_for_test("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    let keys = derive_keys(
        "pencil",
        &b64d("W22ZaJ0SNY7soEsUEjb6gQ=="),
        4096,
        ScramHash::Sha256,
    )
    .unwrap_or_else(|_| panic!("keys"));
    assert_eq!(h.s.provide_credentials(keys), Ok(()));
    let out = h.drain();
    assert_eq!(
        challenge_data(&text(&out)),
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let out = h.send(&response(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    ));
    assert_eq!(
        success_data(&text(&out)),
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
}

#[test]
fn rfc5802_9_unknown_user_fails_at_the_end_like_a_wrong_password() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    h.send(&auth("SCRAM-SHA-256", b"n,,n=nobody,r=abcdef"));
    assert_eq!(h.s.credentials_not_found(), Ok(()));
    let sf = challenge_data(&text(&h.drain()));
    assert!(
        sf.starts_with("r=abcdef") && sf.contains(",s=") && sf.ends_with(",i=4096"),
        "{sf}"
    );
    let fin = client_final_256("guess", &sf, "n=nobody,r=abcdef", b"n,,");
    let out = h.send(&response(fin.as_bytes()));
    assert!(text(&out).contains("<not-authorized/>"), "{out:?}");
    assert_eq!(h.s.username(), None);
}

fn plus_stream(cb: ChannelBindings) -> Harness {
    let mut h = Harness::new(Transport::DirectTls);
    h.s.set_channel_bindings(cb);
    let f = text(&h.open());
    assert!(
        f.contains("<mechanism>SCRAM-SHA-256-PLUS</mechanism>"),
        "{f}"
    );
    assert!(
        f.contains("<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>"),
        "{f}"
    );
    h
}

fn exporter(data: &[u8]) -> ChannelBindings {
    ChannelBindings {
        tls_exporter: Some(data.to_vec()),
        tls_server_end_point: None,
    }
}

#[test]
fn rfc9266_scram_sha256_plus_with_tls_exporter_succeeds() {
    let mut h = plus_stream(exporter(&[9u8; 32]));
    h.send(&auth(
        "SCRAM-SHA-256-PLUS",
        b"p=tls-exporter,,n=alice,r=cnonce",
    ));
    assert_eq!(h.s.provide_credentials(keys256("secret")), Ok(()));
    let sf = challenge_data(&text(&h.drain()));
    let mut c = b"p=tls-exporter,,".to_vec();
    c.extend_from_slice(&[9u8; 32]);
    let fin = client_final_256("secret", &sf, "n=alice,r=cnonce", &c);
    let out = h.send(&response(fin.as_bytes()));
    assert!(text(&out).contains("<success"), "{out:?}");
    assert_eq!(h.s.username(), Some("alice"));
}

#[test]
fn rfc5802_6_channel_binding_mismatch_fails() {
    let mut h = plus_stream(exporter(&[9u8; 32]));
    h.send(&auth(
        "SCRAM-SHA-256-PLUS",
        b"p=tls-exporter,,n=alice,r=cnonce",
    ));
    assert_eq!(h.s.provide_credentials(keys256("secret")), Ok(()));
    let sf = challenge_data(&text(&h.drain()));
    // the client sees another TLS connection (a man in the middle)
    let mut c = b"p=tls-exporter,,".to_vec();
    c.extend_from_slice(&[8u8; 32]);
    let fin = client_final_256("secret", &sf, "n=alice,r=cnonce", &c);
    let out = h.send(&response(fin.as_bytes()));
    assert!(text(&out).contains("<not-authorized/>"), "{out:?}");
    assert_eq!(h.s.username(), None);
}

#[test]
fn rfc5929_tls_server_end_point_is_supported() {
    let cb = ChannelBindings {
        tls_exporter: None,
        tls_server_end_point: Some(vec![1, 2, 3]),
    };
    let mut h = plus_stream(cb);
    h.send(&auth(
        "SCRAM-SHA-256-PLUS",
        b"p=tls-server-end-point,,n=alice,r=cn",
    ));
    assert_eq!(h.s.provide_credentials(keys256("pw")), Ok(()));
    let sf = challenge_data(&text(&h.drain()));
    let fin = client_final_256(
        "pw",
        &sf,
        "n=alice,r=cn",
        b"p=tls-server-end-point,,\x01\x02\x03",
    );
    assert!(text(&h.send(&response(fin.as_bytes()))).contains("<success"));
}

#[test]
fn rfc5802_6_unavailable_binding_type_is_refused() {
    let mut h = plus_stream(exporter(&[1]));
    let out = h.send(&auth(
        "SCRAM-SHA-256-PLUS",
        b"p=tls-server-end-point,,n=alice,r=cn",
    ));
    assert!(text(&out).contains("<malformed-request/>"), "{out:?}");
}

#[test]
fn rfc5802_6_y_flag_while_plus_offered_is_a_downgrade() {
    let mut h = plus_stream(exporter(&[1]));
    let out = h.send(&auth("SCRAM-SHA-256", b"y,,n=alice,r=cn"));
    assert!(text(&out).contains("<not-authorized/>"), "{out:?}");
    // without channel-binding data, `y` is fine
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send(&auth("SCRAM-SHA-256", b"y,,n=alice,r=cn"));
    assert!(matches!(
        events(&out).first(),
        Some(Event::NeedCredentials { .. })
    ));
}

#[test]
fn rfc6120_6_4_2_no_initial_response_gets_empty_challenge() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'/>");
    assert!(text(&out).contains("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'></challenge>"));
    let out = h.send(&response(b"n,,n=alice,r=x"));
    assert!(matches!(
        events(&out).first(),
        Some(Event::NeedCredentials { .. })
    ));
}

#[test]
fn rfc6120_6_5_1_abort() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    h.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>");
    let out = h.send("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    assert!(text(&out).contains("<aborted/>"));
}

#[test]
fn rfc6120_6_5_5_incorrect_encoding() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!</auth>");
    assert!(text(&out).contains("<incorrect-encoding/>"));
}

#[test]
fn rfc6120_6_5_7_invalid_mechanism() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send(&auth("DIGEST-MD5", b"x"));
    assert!(text(&out).contains("<invalid-mechanism/>"));
    // -PLUS is not offered without channel-binding data
    let out = h.send(&auth("SCRAM-SHA-256-PLUS", b"p=tls-exporter,,n=a,r=b"));
    assert!(text(&out).contains("<invalid-mechanism/>"));
}

#[test]
fn rfc6120_6_5_8_malformed_requests() {
    for data in [&b"no-nuls"[..], b"\0\0", b"\0user\0", b"a\0b\0c\0d"] {
        let mut h = Harness::new(Transport::DirectTls);
        h.open();
        let out = h.send(&auth("PLAIN", data));
        assert!(text(&out).contains("<malformed-request/>"), "{data:?}");
    }
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send(&auth("SCRAM-SHA-1", b"garbage"));
    assert!(text(&out).contains("<malformed-request/>"));
}

#[test]
fn rfc4616_plain_wrong_password_and_debug_hides_password() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send(&auth("PLAIN", b"\0alice\0hunter2"));
    let dbg = format!("{out:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    let Some(Event::VerifyPlain { username, password }) = events(&out).into_iter().next() else {
        panic!("{out:?}")
    };
    assert_eq!(username, "alice");
    assert_eq!(password.expose(), "hunter2");
    assert_eq!(h.s.plain_result(false), Ok(()));
    let out = h.drain();
    assert!(text(&out).contains("<not-authorized/>"));
    assert!(events(&out).contains(&Event::AuthFailed {
        mechanism: Some(Mechanism::Plain),
        condition: SaslCondition::NotAuthorized
    }));
    assert_eq!(h.s.plain_result(true), Err(crate::SendError::Unexpected));
}

#[test]
fn rfc6120_6_5_12_plain_checked_later_is_a_temporary_failure() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send(&auth("PLAIN", b"\0alice\0hunter2"));
    assert!(matches!(
        events(&out).first(),
        Some(Event::VerifyPlain { .. })
    ));
    assert_eq!(h.s.plain_try_later(), Ok(()));
    let out = h.drain();
    assert!(
        text(&out).contains("<temporary-auth-failure/>"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("<not-authorized/>"));
    // the client may try again on the same stream
    let out = h.send(&auth("PLAIN", b"\0alice\0hunter2"));
    assert!(matches!(
        events(&out).first(),
        Some(Event::VerifyPlain { .. })
    ));
    assert_eq!(h.s.plain_result(true), Ok(()));
    assert!(text(&h.drain()).contains("<success"));
}

#[test]
fn rfc4616_plain_authzid_must_be_the_user() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send(&auth("PLAIN", b"alice@example.com\0alice\0pw"));
    assert!(matches!(
        events(&out).first(),
        Some(Event::VerifyPlain { .. })
    ));
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    let out = h.send(&auth("PLAIN", b"bob@example.com\0alice\0pw"));
    assert!(text(&out).contains("<invalid-authzid/>"));
}

#[test]
fn rfc6120_6_4_5_too_many_failures_close_the_stream() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    for i in 0..3 {
        h.send(&auth("PLAIN", b"\0alice\0bad"));
        assert_eq!(h.s.plain_result(false), Ok(()));
        let out = h.drain();
        if i < 2 {
            assert!(!is_closed(&out));
        } else {
            assert_eq!(
                closed_with(&out),
                Some(StreamErrorCondition::PolicyViolation)
            );
        }
    }
}

fn oauth(authz: &str, token: &str) -> Vec<u8> {
    format!("n,{authz},\x01host=example.com\x01port=443\x01auth=Bearer {token}\x01\x01")
        .into_bytes()
}

#[test]
fn rfc7628_3_1_oauthbearer_success() {
    let mut h = Harness::new(Transport::WebSocket);
    h.open();
    let out = h.send(&auth(
        "OAUTHBEARER",
        &oauth("a=alice@example.com", "tok123"),
    ));
    assert!(
        !format!("{out:?}").contains("tok123"),
        "token hidden in Debug"
    );
    let Some(Event::VerifyToken { authzid, token }) = events(&out).into_iter().next() else {
        panic!("{out:?}")
    };
    assert_eq!(authzid.as_deref(), Some("alice@example.com"));
    assert_eq!(token.expose(), "tok123");
    assert_eq!(h.s.token_result(Some("alice".into())), Ok(()));
    let out = h.drain();
    assert!(text(&out).contains("<success"));
    assert_eq!(h.s.username(), Some("alice"));
}

#[test]
fn rfc7628_3_2_2_oauthbearer_failure_sends_error_challenge() {
    let mut h = Harness::new(Transport::WebSocket);
    h.open();
    h.send(&auth("OAUTHBEARER", &oauth("", "expired")));
    assert_eq!(h.s.token_result(None), Ok(()));
    let out = h.drain();
    assert_eq!(challenge_data(&text(&out)), r#"{"status":"invalid_token"}"#);
    let out = h.send(&response(b"\x01"));
    assert!(text(&out).contains("<not-authorized/>"));
}

#[test]
fn rfc7628_authzid_of_another_user_is_refused() {
    let mut h = Harness::new(Transport::WebSocket);
    h.open();
    h.send(&auth("OAUTHBEARER", &oauth("a=bob@example.com", "t")));
    assert_eq!(h.s.token_result(Some("alice".into())), Ok(()));
    assert!(text(&h.drain()).contains("<invalid-authzid/>"));
}

#[test]
fn rfc7628_missing_bearer_is_malformed() {
    let mut h = Harness::new(Transport::WebSocket);
    h.open();
    let out = h.send(&auth("OAUTHBEARER", b"n,,\x01host=x\x01\x01"));
    assert!(text(&out).contains("<malformed-request/>"));
}

#[test]
fn rfc6120_6_5_11_keys_for_the_wrong_hash_are_a_temporary_failure() {
    let mut h = Harness::new(Transport::DirectTls);
    h.open();
    assert_eq!(
        h.s.provide_credentials(keys256("pw")),
        Err(crate::SendError::Unexpected)
    );
    h.send(&auth("SCRAM-SHA-1", b"n,,n=alice,r=abc"));
    assert_eq!(h.s.provide_credentials(keys256("pw")), Ok(()));
    assert!(text(&h.drain()).contains("<temporary-auth-failure/>"));
}
