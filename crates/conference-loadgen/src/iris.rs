//! Iris signalling for the load: XMPP over WebSocket (the `iris-xmpp-loadgen` client), a bubble
//! created by the first participant with the others as members, and the conference IQs of
//! `urn:xmpp:iris:conference:0` (join with an SDP offer, answer in the result). Does no media.

use anyhow::{bail, Context, Result};
use iris_xmpp_loadgen::{attr, login, text_of, Reader, Target, Writer};
use tokio::task::JoinHandle;

use crate::peer::OfferedMid;

const NS: &str = "urn:xmpp:iris:conference:0";

/// Where Iris is and who the participants are.
#[derive(Clone, Debug)]
pub struct IrisTarget {
    /// `wss://host:port/xmpp-websocket`.
    pub url: String,
    /// XMPP domain.
    pub domain: String,
    /// Bubble local part (the room is `<room>@conference.<domain>`).
    pub room: String,
    /// (local part, password) per participant: publishers first, then subscribers.
    pub users: Vec<(String, String)>,
}

impl IrisTarget {
    /// The bubble's JID.
    pub fn room_jid(&self) -> String {
        format!("{}@conference.{}", self.room, self.domain)
    }
}

/// One participant's XMPP session, kept open for the run (pushes are read and dropped).
pub struct Session {
    writer: Writer,
    reader: Option<Reader>,
    drain: Option<JoinHandle<()>>,
}

/// Logs in every user (index order).
pub async fn login_all(t: &IrisTarget) -> Result<Vec<Session>> {
    let target = Target {
        url: t.url.clone(),
        domain: t.domain.clone(),
    };
    let mut out = Vec::new();
    for (user, password) in &t.users {
        let (writer, reader, _) = login(&target, user, password, "bench", false)
            .await
            .with_context(|| format!("XMPP login of {user}"))?;
        out.push(Session {
            writer,
            reader: Some(reader),
            drain: None,
        });
    }
    Ok(out)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

fn unesc(s: &str) -> String {
    s.replace("&#13;", "\r")
        .replace("&#xD;", "\r")
        .replace("&#xd;", "\r")
        .replace("&#10;", "\n")
        .replace("&#xA;", "\n")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// SDP with CRLF line ends whatever the XML layer did to them.
fn crlf(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len() + 64);
    for line in sdp.lines() {
        out.push_str(line.trim_end_matches('\r'));
        out.push_str("\r\n");
    }
    out
}

impl Session {
    fn reader(&mut self) -> Result<&mut Reader> {
        match self.reader.as_mut() {
            Some(r) => Ok(r),
            None => bail!("session already draining"),
        }
    }

    async fn iq(&mut self, id: &str, to: &str, payload: &str) -> Result<String> {
        self.writer
            .send(&format!(
                "<iq xmlns='jabber:client' type='set' id='{id}' to='{to}'>{payload}</iq>"
            ))
            .await?;
        let el = self.reader()?.until(&format!("id='{id}'")).await?;
        if attr(&el, "type") != Some("result") {
            bail!("IQ {id} failed: {el}");
        }
        Ok(el)
    }

    /// Creates the bubble (first presence makes us its owner) and makes `members` members.
    pub async fn create_bubble(
        &mut self,
        room: &str,
        nick: &str,
        members: &[String],
    ) -> Result<()> {
        self.writer
            .send(&format!(
                "<presence xmlns='jabber:client' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
            ))
            .await?;
        self.reader()?.until(&format!("from='{room}/")).await?;
        let items: String = members
            .iter()
            .map(|j| format!("<item jid='{}' affiliation='member'/>", esc(j)))
            .collect();
        self.iq(
            "members",
            room,
            &format!("<query xmlns='http://jabber.org/protocol/muc#admin'>{items}</query>"),
        )
        .await?;
        Ok(())
    }

    /// Joins the conference with `offer`; a grid view at `tile_height` for subscribers.
    /// Returns the SDP answer. Afterwards the session's pushes are drained in the background.
    pub async fn join(
        &mut self,
        room: &str,
        nick: &str,
        offer: &str,
        mids: &[OfferedMid],
        tile_height: u32,
    ) -> Result<String> {
        let tracks: String = mids
            .iter()
            .map(|(mid, kind, send)| {
                let dir = if *send { "send" } else { "recv" };
                format!("<track mid='{}' kind='{kind}' dir='{dir}'/>", esc(mid))
            })
            .collect();
        let payload = format!(
            "<join xmlns='{NS}' nick='{}'><sdp>{}</sdp>{tracks}<view mode='grid' tile-height='{tile_height}' data-saver='false'/></join>",
            esc(nick),
            esc(offer)
        );
        let el = self.iq("join", room, &payload).await?;
        let sdp = text_of(&el, "sdp").context("no <sdp/> in the join result")?;
        let answer = crlf(&unesc(sdp));
        if let Some(mut reader) = self.reader.take() {
            self.drain = Some(tokio::spawn(async move {
                while reader.next().await.is_some() {}
            }));
        }
        Ok(answer)
    }

    /// Closes the XMPP session.
    pub async fn close(mut self) {
        self.writer.close().await;
        if let Some(d) = self.drain.take() {
            d.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{crlf, esc, unesc};

    #[test]
    fn sdp_survives_xml_text() {
        let sdp = "v=0\r\na=x:<&>'\"\r\n";
        assert_eq!(crlf(&unesc(&esc(sdp))), sdp);
        assert_eq!(crlf("v=0\na=1\n"), "v=0\r\na=1\r\n");
    }
}
