//! A conference on a remote unit (issue 7, part 1): `iris serve` with the conference role off and
//! a separate `iris conference` process, both the real binary, talking over the real NATS at
//! 127.0.0.1:4222 (a unique subject prefix per run). Two str0m participants join a bubble's
//! conference over XMPP-over-WebSocket and exchange media through the remote unit; one of them
//! moves to a new address and restarts ICE without rejoining; then the unit is killed and
//! both are told their conference ended within 5 s. Skipped (with the reason printed) when NATS
//! is unreachable.
mod common;

use common::{ConferenceUnit, Db, Server};
use iris_conference::testkit::{eventually, subscriber, Client, Setup, PUBLISHER};
use iris_conference::{Offer, ParticipantId, TrackKind};
use iris_xmpp_loadgen::{self as xmpp, Target, Writer};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NATS: &str = "127.0.0.1:4222";
const NS: &str = "urn:xmpp:iris:conference:0";

fn nats_reachable() -> bool {
    let addr: SocketAddr = NATS.parse().expect("addr");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("iris-test-{}-{nanos}.conference", std::process::id())
}

/// `iris serve` with the conference role off and a separate `iris conference`, both on the
/// real NATS under a fresh subject prefix; `control` goes to both, `unit` to the unit only.
/// Also returns the shared control settings, for starting more units with [`start_unit`].
async fn serve_and_unit(
    control: &[(&str, &str)],
    unit: &[(&str, &str)],
) -> (Server, ConferenceUnit, Vec<(String, String)>) {
    let mut shared: Vec<(String, String)> = vec![
        (
            "IRIS_CONFERENCE__CONTROL__NATS_URL".into(),
            "nats://127.0.0.1:4222".into(),
        ),
        (
            "IRIS_CONFERENCE__CONTROL__SUBJECT_PREFIX".into(),
            unique_prefix(),
        ),
    ];
    shared.extend(control.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut serve_env = pairs(&shared);
    serve_env.push(("IRIS_ROLES__CONFERENCE", "false"));
    let s = Server::start_with(Db::Sqlite, &serve_env).await;
    let first = start_unit(&shared, unit);
    (s, first, shared)
}

/// Starts one more `iris conference` with the shared control settings and `extra`.
fn start_unit(shared: &[(String, String)], extra: &[(&str, &str)]) -> ConferenceUnit {
    let mut env = pairs(shared);
    env.extend_from_slice(extra);
    ConferenceUnit::start(&env)
}

fn pairs(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// One participant's XMPP session: everything received is logged for the test to search.
struct Session {
    jid: String,
    writer: tokio::sync::Mutex<Writer>,
    log: Arc<Mutex<Vec<String>>>,
    next_id: Mutex<u32>,
}

impl Session {
    /// Adds the user with the CLI, then logs in.
    async fn new_user(s: &Server, login: &str, password: &str) -> Session {
        let out = s.cli(&["user", "add", login, "--password", password]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Session::login(s, login, password).await
    }

    async fn login(s: &Server, login: &str, password: &str) -> Session {
        let target = Target {
            url: s.xmpp_websocket(),
            domain: "localhost".into(),
        };
        let user = login.split('@').next().unwrap_or(login);
        let (mut w, mut r, jid) = xmpp::login(&target, user, password, "conf", false)
            .await
            .expect("xmpp login");
        w.send("<presence xmlns='jabber:client'/>")
            .await
            .expect("presence");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            while let Some(el) = r.next().await {
                sink.lock().expect("lock").push(el);
            }
        });
        Session {
            jid,
            writer: tokio::sync::Mutex::new(w),
            log,
            next_id: Mutex::new(0),
        }
    }

    fn bare(&self) -> &str {
        self.jid.split('/').next().unwrap_or(&self.jid)
    }

    async fn send(&self, text: &str) {
        self.writer.lock().await.send(text).await.expect("send");
    }

    fn mark(&self) -> usize {
        self.log.lock().expect("lock").len()
    }

    /// The first element after `mark` matching `pred`, waiting up to `timeout`.
    async fn wait(
        &self,
        mark: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(el) = self
                .log
                .lock()
                .expect("lock")
                .iter()
                .skip(mark)
                .find(|e| pred(e))
            {
                return Some(el.clone());
            }
            if Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends an IQ `set` to `to` and returns the response element.
    async fn iq(&self, to: &str, body: &str) -> String {
        let id = {
            let mut n = self.next_id.lock().expect("lock");
            *n += 1;
            format!("q{n}")
        };
        let mark = self.mark();
        self.send(&format!(
            "<iq xmlns='jabber:client' type='set' id='{id}' to='{to}'>{body}</iq>"
        ))
        .await;
        let needle = format!("id='{id}'");
        self.wait(mark, Duration::from_secs(20), |e| {
            e.starts_with("<iq") && e.contains(&needle)
        })
        .await
        .unwrap_or_else(|| panic!("no answer to {body:.80}"))
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "apos" => Some('\''),
            "quot" => Some('"'),
            e => e
                .strip_prefix("#x")
                .or_else(|| e.strip_prefix("#X"))
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| e.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `<join/>` or `<update/>` carrying an offer.
fn offer_payload(name: &str, nick: Option<&str>, offer: &Offer) -> String {
    let mut tracks = String::new();
    for (list, dir) in [(&offer.publish, "send"), (&offer.slots, "recv")] {
        for t in list {
            let kind = match t.kind {
                TrackKind::Audio => "audio",
                TrackKind::Video => "video",
                TrackKind::Screen => "screen",
            };
            tracks.push_str(&format!(
                "<track mid='{}' kind='{kind}' dir='{dir}'/>",
                t.mid
            ));
        }
    }
    let nick = nick.map(|n| format!(" nick='{n}'")).unwrap_or_default();
    format!(
        "<{name} xmlns='{NS}'{nick}><sdp>{}</sdp>{tracks}</{name}>",
        escape(&offer.sdp)
    )
}

/// Joins the bubble's conference over XMPP: retries while no unit is known yet
/// (`service-unavailable`); returns the participant id and the SDP answer.
async fn join(session: &Session, room: &str, nick: &str, offer: Offer) -> (ParticipantId, String) {
    let payload = offer_payload("join", Some(nick), &offer);
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = session.iq(room, &payload).await;
        if answer.contains("type='result'") {
            let id = answer
                .split("participant='")
                .nth(1)
                .and_then(|r| r.split('\'').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("participant id in {answer:.200}"));
            let sdp = xmpp::text_of(&answer, "sdp").expect("answer sdp");
            return (id, unescape(sdp));
        }
        assert!(
            answer.contains("service-unavailable") && Instant::now() < end,
            "join refused: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates the bubble with `owner` and makes `members` its members.
async fn create_bubble(owner: &Session, room: &str, members: &[&str]) {
    let mark = owner.mark();
    owner
        .send(&format!(
            "<presence xmlns='jabber:client' to='{room}/owner'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await;
    owner
        .wait(mark, Duration::from_secs(10), |e| {
            e.starts_with("<presence") && e.contains(&format!("from='{room}/"))
        })
        .await
        .expect("bubble created");
    let items: String = members
        .iter()
        .map(|j| format!("<item jid='{j}' affiliation='member'/>"))
        .collect();
    let r = owner
        .iq(
            room,
            &format!("<query xmlns='http://jabber.org/protocol/muc#admin'>{items}</query>"),
        )
        .await;
    assert!(r.contains("type='result'"), "member added: {r}");
}

async fn participant(session: &Session, room: &str, nick: &str, setup: Setup) -> Client {
    Client::join_with(setup, |offer| join(session, room, nick, offer)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_on_a_remote_unit_exchange_media_restart_ice_and_learn_of_its_loss() {
    if !nats_reachable() {
        println!("SKIPPED remote conference test: NATS is not reachable at {NATS} (start nats-server -js)");
        return;
    }
    let (s, mut unit, control) = serve_and_unit(
        &[
            ("IRIS_CONFERENCE__CONTROL__HEARTBEAT_MS", "500"),
            ("IRIS_CONFERENCE__CONTROL__UNIT_TIMEOUT_MS", "2000"),
        ],
        &[("IRIS_CONFERENCE__CONTROL__UNIT_NAME", "unit-a")],
    )
    .await;
    assert!(
        unit.banner
            .iter()
            .any(|l| l.contains("conference unit unit-a")),
        "{:?}",
        unit.banner
    );
    let http = common::client();
    let health = http
        .get(unit.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert!(health.status().is_success());
    let ready = http.get(unit.url("/readyz")).send().await.expect("readyz");
    assert!(ready.status().is_success());

    let ann = Session::new_user(&s, "ann@localhost", "ann-password").await;
    let ben = Session::new_user(&s, "ben@localhost", "ben-password").await;
    let room = "standup@conference.localhost";
    create_bubble(&ann, room, &[ben.bare()]).await;

    // Both join through the XMPP node; the media goes to the remote unit.
    let a = participant(&ann, room, "ann", PUBLISHER).await;
    let ben_mark = ben.mark();
    let mut b = participant(&ben, room, "ben", subscriber(2)).await;
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || b.latest_layer(1, t0) == Some(0)).await,
        "ben receives ann's video (180p in grid view) from the remote unit"
    );
    assert!(
        eventually(Duration::from_secs(5), || a.audio_from(2) > 0).await,
        "ann receives ben's audio from the remote unit"
    );
    let roster = ben
        .wait(ben_mark, Duration::from_secs(5), |e| {
            e.contains("<roster") && e.matches("<participant ").count() == 2
        })
        .await
        .expect("ben gets the roster of two");
    assert!(
        roster.contains("nick='ann'") && roster.contains("jid='ann@localhost'"),
        "{roster}"
    );

    // A view change travels to the unit: talker view gets 720p.
    let r = ben
        .iq(room, &format!("<view xmlns='{NS}' mode='talker'/>"))
        .await;
    assert!(r.contains("type='result'"), "{r}");
    let switched = Instant::now();
    assert!(
        eventually(Duration::from_secs(3), || b.latest_layer(1, switched)
            == Some(2))
        .await,
        "the view request reaches the remote unit (720p in talker view)"
    );

    // Ben's network changes: new socket, ICE restart through <update/>, same participant.
    let old_addr = b.addr;
    let ben_ref = &ben;
    b.restart_ice(|offer| async move {
        let r = ben_ref
            .iq(room, &offer_payload("update", None, &offer))
            .await;
        assert!(r.contains("type='result'"), "update: {r}");
        unescape(xmpp::text_of(&r, "sdp").expect("updated sdp"))
    })
    .await;
    assert_ne!(b.addr, old_addr);
    let restarted = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || b
            .latest_layer(1, restarted)
            .is_some())
        .await,
        "video reaches ben's new address after the ICE restart, without rejoining"
    );
    let audio = a.audio_from(2);
    assert!(
        eventually(Duration::from_secs(5), || a.audio_from(2) > audio).await,
        "ben's audio from the new address reaches ann"
    );
    // Past the unit's vanish timeout (4 s) ben is still in the conference.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let later = Instant::now();
    assert!(
        eventually(Duration::from_secs(3), || b
            .latest_layer(1, later)
            .is_some())
        .await,
        "media keeps flowing after the restart"
    );

    // The unit dies: both participants are told within 5 s.
    let (ann_mark, ben_mark) = (ann.mark(), ben.mark());
    let killed = Instant::now();
    unit.kill9();
    let ended = |e: &str| e.contains("<ended") && e.contains("reason='unit-lost'");
    let ann_told = ann.wait(ann_mark, Duration::from_secs(5), ended).await;
    let ben_told = ben.wait(ben_mark, Duration::from_secs(5), ended).await;
    let took = killed.elapsed();
    assert!(ann_told.is_some() && ben_told.is_some(), "told within 5 s");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    println!(
        "participants told of the lost unit after {} ms",
        took.as_millis()
    );

    // A second unit takes over: joining again works.
    let _unit_b = start_unit(
        &control,
        &[("IRIS_CONFERENCE__CONTROL__UNIT_NAME", "unit-b")],
    );
    drop(b);
    drop(a);
    let a = participant(&ann, room, "ann", PUBLISHER).await;
    let b = participant(&ben, room, "ben", subscriber(2)).await;
    let t1 = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || b.latest_layer(1, t1).is_some()).await,
        "the bubble's conference continues on another unit after rejoining"
    );
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_remote_unit_then_its_participants_are_told() {
    if !nats_reachable() {
        println!("SKIPPED remote conference drain test: NATS is not reachable at {NATS}");
        return;
    }
    let (s, mut unit, _) = serve_and_unit(
        &[("IRIS_CONFERENCE__CONTROL__HEARTBEAT_MS", "300")],
        &[("IRIS_CONFERENCE__DRAIN_TIMEOUT_SECS", "3")],
    )
    .await;
    let cat = Session::new_user(&s, "cat@localhost", "cat-password").await;
    let dan = Session::new_user(&s, "dan@localhost", "dan-password").await;
    let room = "drain@conference.localhost";
    create_bubble(&cat, room, &[dan.bare()]).await;
    let _c = participant(&cat, room, "cat", PUBLISHER).await;
    let d = participant(&dan, room, "dan", subscriber(2)).await;
    let t0 = Instant::now();
    assert!(eventually(Duration::from_secs(10), || d.latest_layer(1, t0).is_some()).await);

    let (cat_mark, dan_mark) = (cat.mark(), dan.mark());
    unit.sigterm();
    let http = common::client();
    let url = unit.url("/readyz");
    let mut draining = false;
    for _ in 0..40 {
        if let Ok(r) = http.get(&url).send().await {
            if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                draining = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(draining, "/readyz says 503 while draining");
    // No new joins once the bridge has seen the draining heartbeat.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let refused = dan
        .iq(
            "other@conference.localhost",
            &format!("<join xmlns='{NS}' nick='dan'><sdp>v=0</sdp></join>"),
        )
        .await;
    assert!(refused.contains("type='error'"), "{refused}");
    // The running call goes on during the drain.
    let during = Instant::now();
    assert!(
        eventually(Duration::from_secs(2), || d
            .latest_layer(1, during)
            .is_some())
        .await,
        "media continues while draining"
    );
    // At the deadline the unit says goodbye: both are told, and the process exits cleanly.
    let ended = |e: &str| e.contains("<ended") && e.contains("reason='unit-lost'");
    assert!(cat
        .wait(cat_mark, Duration::from_secs(8), ended)
        .await
        .is_some());
    assert!(dan
        .wait(dan_mark, Duration::from_secs(2), ended)
        .await
        .is_some());
    let status = unit.wait_exit(Duration::from_secs(15)).expect("unit exits");
    assert!(status.success(), "{status}");
}
