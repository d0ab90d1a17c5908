//! Janus signalling for the load: the Janus HTTP API (session, handles, long poll) and the
//! videoroom plugin (publishers `join` + `publish` with our offer; subscribers `join` with all
//! feeds, answer Janus's offer, `start`, then `configure` the simulcast substream). No media.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// A Janus session over HTTP.
pub struct Janus {
    http: reqwest::Client,
    base: String,
    session: u64,
    next_tx: u64,
}

fn id_of(v: &Value) -> Option<u64> {
    v.get("data")?.get("id")?.as_u64()
}

impl Janus {
    /// Creates a session at `base` (`http://127.0.0.1:8088/janus`).
    pub async fn connect(base: &str) -> Result<Janus> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()?;
        let mut j = Janus {
            http,
            base: base.trim_end_matches('/').to_owned(),
            session: 0,
            next_tx: 1,
        };
        let v = j.post(&j.base.clone(), json!({"janus": "create"})).await?;
        j.session = id_of(&v).ok_or_else(|| anyhow!("create: {v}"))?;
        Ok(j)
    }

    async fn post(&mut self, url: &str, mut body: Value) -> Result<Value> {
        let tx = format!("t{}", self.next_tx);
        self.next_tx += 1;
        body["transaction"] = json!(tx);
        let v: Value = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?
            .json()
            .await?;
        if v.get("janus").and_then(Value::as_str) == Some("error") {
            bail!("janus error: {v}");
        }
        Ok(v)
    }

    /// Attaches a videoroom handle.
    pub async fn attach(&mut self) -> Result<u64> {
        let url = format!("{}/{}", self.base, self.session);
        let v = self
            .post(
                &url,
                json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}),
            )
            .await?;
        id_of(&v).ok_or_else(|| anyhow!("attach: {v}"))
    }

    /// Sends a plugin message; returns the plugin's data and the JSEP of its answer event.
    pub async fn message(
        &mut self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<(Value, Option<Value>)> {
        let url = format!("{}/{}/{}", self.base, self.session, handle);
        let mut msg = json!({"janus": "message", "body": body});
        if let Some(j) = jsep {
            msg["jsep"] = j;
        }
        let v = self.post(&url, msg).await?;
        let tx = v.get("transaction").cloned();
        let event = match v.get("janus").and_then(Value::as_str) {
            Some("success") => v,
            Some("ack") => self.wait(tx).await?,
            _ => bail!("unexpected answer: {v}"),
        };
        let data = event
            .get("plugindata")
            .and_then(|p| p.get("data"))
            .cloned()
            .unwrap_or(Value::Null);
        if data.get("error").is_some() {
            bail!("videoroom error: {data}");
        }
        Ok((data, event.get("jsep").cloned()))
    }

    /// Long-polls the session until the event of transaction `tx` arrives.
    async fn wait(&mut self, tx: Option<Value>) -> Result<Value> {
        let url = format!("{}/{}?maxev=1", self.base, self.session);
        for _ in 0..200 {
            let v: Value = self.http.get(&url).send().await?.json().await?;
            if v.get("janus").and_then(Value::as_str) == Some("event")
                && v.get("transaction") == tx.as_ref()
            {
                return Ok(v);
            }
        }
        bail!("no answer from janus")
    }

    /// Tells Janus our candidates are all in the SDP.
    pub async fn trickle_done(&mut self, handle: u64) -> Result<()> {
        let url = format!("{}/{}/{}", self.base, self.session, handle);
        self.post(
            &url,
            json!({"janus": "trickle", "candidate": {"completed": true}}),
        )
        .await?;
        Ok(())
    }

    /// Destroys the session (and its handles).
    pub async fn destroy(mut self) {
        let url = format!("{}/{}", self.base, self.session);
        let _ = self.post(&url, json!({"janus": "destroy"})).await;
    }
}

/// `{"type": "offer"|"answer", "sdp": …}`.
pub fn jsep(kind: &str, sdp: &str) -> Value {
    json!({"type": kind, "sdp": sdp})
}

/// The SDP of a JSEP object.
pub fn sdp_of(jsep: Option<&Value>) -> Result<String> {
    jsep.and_then(|j| j.get("sdp"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no jsep sdp"))
}

/// Our offer without `a=ssrc`/`a=ssrc-group` lines in the video section, as browsers offer
/// rid-based simulcast: Janus then learns the layers' SSRCs from the rid header extension
/// instead of taking the first listed SSRC as a single non-simulcast stream.
pub fn without_video_ssrcs(sdp: &str) -> String {
    let mut video = false;
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        if line.starts_with("m=") {
            video = line.starts_with("m=video");
        }
        if video && line.starts_with("a=ssrc") {
            continue;
        }
        out.push_str(line.trim_end_matches('\r'));
        out.push_str("\r\n");
    }
    out
}

/// Video mids of a subscriber's `attached`/`updated` event.
pub fn video_mids(data: &Value) -> Vec<String> {
    data.get("streams")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter(|x| x.get("type").and_then(Value::as_str) == Some("video"))
                .filter_map(|x| x.get("mid").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
