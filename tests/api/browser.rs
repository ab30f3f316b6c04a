//! The widget in a real headless Chromium, driven over the DevTools
//! protocol: a customer opens the chat on the demo store, asks, verifies and
//! sees their order. Skipped with a notice where Chromium is missing, except
//! under `CI=true` (`.ci/run` installs it).

use std::{path::PathBuf, process::Stdio, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use crate::helpers::*;

/// Every wait in the page is for a condition, bounded by this.
const PAGE_TIMEOUT_MS: u64 = 15_000;

fn chromium_path() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("CHROMIUM_PATH") {
        return Some(path.into());
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

struct Browser {
    _process: Child,
    _profile: tempfile::TempDir,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session_id: String,
    next_id: u64,
}

impl Browser {
    async fn launch() -> Option<Browser> {
        let Some(path) = chromium_path() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Chromium is required in CI (apt-get install chromium)"
            );
            eprintln!("notice: skipping the browser test, Chromium is not installed");
            return None;
        };
        let profile = tempfile::tempdir().unwrap();
        let mut process = Command::new(path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("Chromium starts");
        // Chromium says where its DevTools endpoint listens on stderr.
        let mut lines = BufReader::new(process.stderr.take().unwrap()).lines();
        let endpoint = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    return url.trim().to_owned();
                }
            }
            panic!("Chromium exited without a DevTools endpoint");
        })
        .await
        .expect("Chromium reports its DevTools endpoint");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let (ws, _) = tokio_tungstenite::connect_async(endpoint).await.expect("DevTools connects");
        let mut browser = Browser { _process: process, _profile: profile, ws, session_id: String::new(), next_id: 0 };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" })).await;
        let attached =
            browser.call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true })).await;
        browser.session_id = attached["sessionId"].as_str().unwrap().to_owned();
        Some(browser)
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({ "id": id, "method": method, "params": params });
        if !self.session_id.is_empty() {
            request["sessionId"] = json!(self.session_id);
        }
        self.ws.send(Message::text(request.to_string())).await.unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("DevTools answers")
                .unwrap()
                .unwrap();
            let Message::Text(text) = message else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates `js` (which may await) in the page and returns its value.
    async fn eval(&mut self, js: &str) -> Value {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": js, "awaitPromise": true, "returnByValue": true }))
            .await;
        assert!(result.get("exceptionDetails").is_none(), "page script failed: {result:#}");
        result["result"]["value"].clone()
    }

    /// Loads a page with the widget and waits for its launcher.
    async fn open(&mut self, url: &str) {
        self.load(url).await;
        self.eval("t.until(() => t.q('sa-launcher'), 'the launcher')").await;
    }

    /// Loads `url` and installs the page-side test helpers once it has loaded.
    async fn load(&mut self, url: &str) {
        self.call("Page.enable", json!({})).await;
        self.call("Page.navigate", json!({ "url": url })).await;
        let helpers = HELPERS.replace("TIMEOUT", &PAGE_TIMEOUT_MS.to_string());
        self.eval(&format!(
            "new Promise(r => {{ const go = () => r(eval({helpers:?})); \
             document.readyState === 'complete' ? go() : addEventListener('load', go); }})"
        ))
        .await;
    }

    async fn screenshot(&mut self, name: &str) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" })).await;
        let bytes = decode_base64(shot["data"].as_str().unwrap());
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, bytes).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
}

/// Page-side helpers: find widget parts in its shadow root and wait for a
/// condition (polling the DOM, bounded by a timeout).
const HELPERS: &str = r#"
window.t = {
  root: () => document.querySelector('support-assistant-widget')?.shadowRoot,
  q: (id) => t.root()?.querySelector(`[data-testid="${id}"]`),
  all: (sel) => Array.from(t.root()?.querySelectorAll(sel) ?? []),
  until: (f, what) => new Promise((resolve, reject) => {
    const end = Date.now() + TIMEOUT;
    (function poll() {
      let v; try { v = f(); } catch (e) { v = null; }
      if (v) return resolve(v);
      if (Date.now() > end) return reject(new Error('timed out waiting for ' + what));
      setTimeout(poll, 25);
    })();
  }),
  say: async (text) => {
    const before = t.all('[data-testid="sa-msg"][data-role="assistant"]').length;
    const input = t.q('sa-input');
    input.value = text;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    t.q('sa-send').click();
    return t.until(() => {
      const replies = t.all('[data-testid="sa-msg"][data-role="assistant"]');
      return replies.length > before && replies[replies.length - 1].textContent;
    }, 'a reply to ' + text);
  },
};
true
"#;

#[tokio::test]
async fn a_customer_chats_verifies_and_sees_their_order_in_the_widget() {
    let Some(mut browser) = Browser::launch().await else { return };
    let app = spawn_app(Backend::Sqlite).await;

    browser.open(&app.url("/")).await;

    browser.eval("t.q('sa-launcher').click(); true").await;
    let disclosure = browser.eval("t.until(() => t.q('sa-disclosure')?.textContent.trim(), 'the AI disclosure')").await;
    assert!(disclosure.as_str().unwrap().contains("AI assistant"), "{disclosure}");

    let reply = browser.eval("t.say('Do you ship to Canada?')").await;
    assert!(reply.as_str().unwrap().contains("Canada"), "{reply}");
    let citation = browser.eval("t.until(() => t.q('sa-citation')?.textContent, 'a citation')").await;
    assert!(citation.as_str().unwrap().contains("Shipping"), "{citation}");

    // An order question from a guest shows the verification form, and no order.
    browser.eval("t.q('sa-input').value = 'Where is my order #1001?'; t.q('sa-send').click(); true").await;
    browser.eval("t.until(() => t.q('sa-verify') && !t.q('sa-verify').closest('[hidden]'), 'the verify form')").await;
    assert_eq!(browser.eval("t.all('[data-testid=\"sa-card-order\"]').length").await, 0);

    browser
        .eval(
            "(() => { t.q('sa-verify-order').value = '#1001'; t.q('sa-verify-email').value = 'ava@example.com';
               t.q('sa-verify-submit').click(); return true; })()",
        )
        .await;
    browser.eval("t.until(() => !t.q('sa-verify') || t.q('sa-verify').closest('[hidden]') || t.q('sa-verify').hidden, 'the form to close')").await;

    browser.eval("t.say('where is my order?')").await;
    let card = browser.eval("t.until(() => t.q('sa-card-order')?.textContent, 'an order card')").await;
    let card = card.as_str().unwrap();
    assert!(card.contains("#1001") && card.contains("1Z999AA10123456784"), "{card}");
    browser.screenshot("widget-order.png").await;
}

/// A stand-in for a Shopify storefront with an App Proxy: its page embeds the
/// widget with `data-token-url`, and `/apps/assistant` forwards to the
/// assistant with a query signed as Shopify signs it, for a logged-in customer.
async fn storefront_with_app_proxy(assistant: String, customer_id: &'static str) -> String {
    use axum::{response::Html, routing::get};
    let page = format!(
        r#"<!doctype html><title>Shop</title><h1>Shop</h1>
        <script src="{assistant}/widget.js" data-assistant-url="{assistant}" data-token-url="/apps/assistant" async></script>"#
    );
    let proxy = move || {
        let assistant = assistant.clone();
        async move {
            let query = crate::redteam::proxy_query(customer_id, now());
            let url = format!("{assistant}/v1/identity/app-proxy?{query}");
            let response = reqwest::get(url).await.unwrap();
            let status = axum::http::StatusCode::from_u16(response.status().as_u16()).unwrap();
            (status, response.text().await.unwrap())
        }
    };
    let router =
        axum::Router::new().route("/", get(move || async move { Html(page) })).route("/apps/assistant", get(proxy));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/")
}

#[tokio::test]
async fn a_logged_in_shopify_customer_is_recognised_through_the_app_proxy() {
    let Some(mut browser) = Browser::launch().await else { return };
    let app = spawn_app_with(Backend::Sqlite, &[("SHOPIFY_APP_PROXY_SECRET", crate::redteam::PROXY_SECRET)]).await;
    let shop = storefront_with_app_proxy(format!("http://{}", app.addr), "7002").await;

    browser.open(&shop).await;
    browser.eval("t.q('sa-launcher').click(); true").await;
    let status = browser
        .eval("t.until(() => window.SupportAssistant.state.identity?.status === 'verified' && 'verified', 'sign-in')")
        .await;
    assert_eq!(status, "verified");
    browser.eval("t.say('where is my order?')").await;
    let card = browser.eval("t.until(() => t.q('sa-card-order')?.textContent, 'an order card')").await;
    assert!(card.as_str().unwrap().contains("#1002"), "{card}");
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()).map(value).collect();
    clean
        .chunks(4)
        .flat_map(|chunk| {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, v)| acc | u32::from(*v) << (18 - 6 * i));
            (0..chunk.len() - 1).map(move |i| (n >> (16 - 8 * i)) as u8)
        })
        .collect()
}

#[tokio::test]
async fn an_operator_signs_in_to_the_console_and_reads_a_transcript() {
    let Some(mut browser) = Browser::launch().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    let (mut chat, _) = app.guest().await;
    chat.ask("m1", "Do you ship to Canada?").await;
    chat.ask("m2", "I want to talk to a person").await;

    browser.load(&app.url("/admin")).await;
    // The console lives in the page itself, not in a shadow root.
    browser.eval("t.d = (id) => document.querySelector(`[data-testid=\"${id}\"]`); true").await;
    browser.eval("t.until(() => t.d('admin-token'), 'the sign-in form')").await;
    browser.eval(&format!("t.d('admin-token').value = {ADMIN_TOKEN:?}; t.d('admin-signin').click(); true")).await;
    let conversations = browser.eval("t.until(() => /\\d/.test(t.d('kpi-conversations')?.textContent) && t.d('kpi-conversations').textContent.trim(), 'the KPIs')").await;
    assert_eq!(conversations, "1");
    browser.screenshot("console-overview.png").await;

    browser
        .eval("location.hash = '#conversations'; t.until(() => t.d('conversation-row'), 'a conversation row')")
        .await;
    browser.eval("t.d('conversation-row').click(); true").await;
    let transcript = browser.eval("t.until(() => t.d('transcript')?.textContent.includes('Canada') && t.d('transcript').textContent, 'the transcript')").await;
    let transcript = transcript.as_str().unwrap();
    assert!(transcript.contains("Policy question") && transcript.contains("knowledge.search"), "{transcript}");
    let escalations = browser.eval("t.d('escalations')?.textContent ?? ''").await;
    assert!(escalations.as_str().unwrap().to_lowercase().contains("human requested"), "{escalations}");
}

#[tokio::test]
async fn a_handoff_in_the_widget_shows_its_states_and_the_agents_reply_as_a_person() {
    use crate::intercom::{handoff, mock::MockIntercom};
    let Some(mut browser) = Browser::launch().await else { return };
    let mock = MockIntercom::start().await;
    let app = handoff::spawn(&mock, Backend::Sqlite, &[("INTERCOM_RETRY_BASE_MS", "200")]).await;

    browser.open(&app.url("/")).await;
    browser.eval("t.q('sa-launcher').click(); true").await;
    browser.eval("t.until(() => t.q('sa-disclosure'), 'the chat')").await;
    // Intercom is down for a moment: the customer is told a person will follow up.
    mock.outage(Duration::from_secs(2), 503);
    browser.eval("t.q('sa-handoff').click(); true").await;
    let status =
        |s: &str| format!("t.until(() => t.root().querySelector('[data-status=\"{s}\"]')?.textContent, 'handoff {s}')");
    browser.eval(&status("requested")).await;
    let retrying = browser.eval(&status("failed_retrying")).await;
    assert!(retrying.as_str().unwrap().contains("A person will follow up"), "{retrying}");
    let created = browser.eval(&status("created")).await;
    let reference = mock.conversations()[0].id.clone();
    assert!(created.as_str().unwrap().contains(&reference), "{created}");

    let part =
        handoff::admin_part("comment", "<p>Hi, this is Andy. <a href=\"https://example.com/t\">Your tracking</a></p>");
    let reply = handoff::notification("notif_b1", "conversation.admin.replied", &reference, part);
    assert_eq!(handoff::post_webhook(&app, &reply).await.status(), 200);
    let agent = browser
        .eval("t.until(() => t.root().querySelector('[data-role=\"agent\"]')?.textContent, 'the agent reply')")
        .await;
    let agent = agent.as_str().unwrap();
    assert!(agent.contains("Andy") && agent.contains("Hi, this is Andy."), "labelled as a person: {agent}");
    let link = browser.eval("t.root().querySelector('[data-role=\"agent\"] a')?.href").await;
    assert_eq!(link, "https://example.com/t");
    browser.eval(&status("agent_replied")).await;
    browser.screenshot("widget-handoff.png").await;
}

#[tokio::test]
async fn an_operator_sees_a_dead_handoff_in_the_console_and_retries_it() {
    use crate::intercom::{handoff, mock::Fault, mock::MockIntercom};
    let Some(mut browser) = Browser::launch().await else { return };
    let mock = MockIntercom::start().await;
    // Intercom refuses the first request: the job is dead-lettered at once.
    mock.then(Fault::Status(422));
    let app = handoff::spawn(&mock, Backend::Sqlite, &[]).await;
    let (mut chat, _) = app.customer("7001").await;
    handoff::escalate(&mut chat, "m1", "failed_retrying").await;

    browser.load(&app.url("/admin")).await;
    browser.eval("t.d = (id) => document.querySelector(`[data-testid=\"${id}\"]`); true").await;
    browser.eval("t.until(() => t.d('admin-token'), 'the sign-in form')").await;
    browser.eval(&format!("t.d('admin-token').value = {ADMIN_TOKEN:?}; t.d('admin-signin').click(); true")).await;
    browser.eval("t.until(() => t.d('tab-handoff'), 'the tabs'); location.hash = '#handoff'; true").await;
    let row = browser.eval("t.until(() => t.d('handoff-row')?.textContent, 'a dead job')").await;
    assert!(row.as_str().unwrap().contains("422"), "the refusal is shown: {row}");
    browser.screenshot("console-handoff.png").await;
    browser.eval("t.d('handoff-retry').click(); true").await;
    handoff::frame_where(&mut chat, handoff::handoff("created")).await;
    assert_eq!(mock.conversations().len(), 1);
    browser.eval("t.until(() => !t.d('handoff-row'), 'the dead list to empty')").await;
}

#[tokio::test]
async fn the_widget_does_not_expose_the_session_id_on_window() {
    let Some(mut browser) = Browser::launch().await else { return };
    let app = spawn_app(Backend::Sqlite).await;

    browser.open(&app.url("/")).await;
    browser.eval("t.q('sa-launcher').click(); true").await;
    browser.eval("t.until(() => window.SupportAssistant.state.connected && 'connected', 'the welcome')").await;
    // Any script on the store's page can read window: a session id there resumes the conversation.
    let exposed = browser
        .eval(
            "(() => {
                const id = sessionStorage.getItem('sa:session_id');
                if (!id) return 'no session';
                const seen = new Set();
                const holds = (v, depth) => {
                    if (typeof v === 'string') return v.includes(id);
                    // The storage itself, and window's aliases of itself (globalThis, self, top), are not leaks.
                    if (v === window || v === sessionStorage || v === localStorage) return false;
                    if (!v || typeof v !== 'object' || depth > 3 || seen.has(v)) return false;
                    seen.add(v);
                    return Object.getOwnPropertyNames(v).some((k) => { try { return holds(v[k], depth + 1); } catch (_) { return false; } });
                };
                const hit = Object.getOwnPropertyNames(window)
                    .filter((k) => k !== 'sessionStorage' && k !== 'localStorage')
                    .find((k) => { try { return holds(window[k], k === 'SupportAssistant' ? 0 : 2); } catch (_) { return false; } });
                return hit || 'none';
            })()",
        )
        .await;
    assert_eq!(exposed, "none", "the session id is reachable from window.{exposed}");
}

/// An idle socket is closed by the server; the widget then waits for its
/// customer instead of reconnecting on its own (or an idle tab would hold a
/// socket forever), and the next message brings it back.
#[tokio::test]
async fn after_an_idle_close_the_widget_waits_for_its_customer() {
    let Some(mut browser) = Browser::launch().await else { return };
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_IDLE_TIMEOUT_SECS", "1")]).await;

    browser.open(&app.url("/")).await;
    browser.eval("t.q('sa-launcher').click(); true").await;
    browser.eval("t.until(() => window.SupportAssistant.state.connected && 'connected', 'the welcome')").await;
    let paused = browser
        .eval("t.until(() => t.q('sa-connection')?.textContent.includes('Paused') && 'paused', 'the idle close')")
        .await;
    assert_eq!(paused, "paused");
    assert_eq!(browser.eval("window.SupportAssistant.state.connected").await, false);

    let reply = browser.eval("t.say('Do you ship to Canada?')").await;
    assert!(reply.as_str().unwrap().contains("Canada"), "{reply}");
}
