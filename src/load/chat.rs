//! Chat mode: hold N idle widget sessions, then drive C conversations of T
//! turns each. A turn is timed from sending `message` to the `typing: off`
//! that ends it.

use std::{
    path::Path,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt, stream};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{
    LoadError, Target, resident_kib,
    socket::{Event, Frame, Socket, hold, next_text, open_session},
    stats::{Latencies, Tally, millis, picks},
};

/// Handshakes in flight at once: below the service's `CHAT_MAX_PENDING_HELLO` default.
const CONNECTS_IN_FLIGHT: usize = 64;
const HANDOFF_REQUEST: &str = "I want to talk to a person";
/// The demo store's signed-in customers and questions about their own orders.
const ORDER_CUSTOMERS: &[(&str, &str, &str, &[&str])] = &[
    ("7001", "Ava Thompson", "ava@example.com", &["Where is my order #1001?", "Has order #1004 shipped yet?"]),
    ("7002", "Liam Chen", "liam@example.com", &["Where is my order #1002?", "When will order #1008 arrive?"]),
];

/// How long a simulated customer reads a reply before asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    FlatOut,
    Between(Duration, Duration),
}

impl FromStr for Pause {
    type Err = String;

    /// `0` (flat out), `300` or `200..500` (milliseconds).
    fn from_str(text: &str) -> Result<Self, String> {
        let ms = |part: &str| part.trim().parse::<u64>().map(Duration::from_millis).map_err(|e| format!("{part}: {e}"));
        let (low, high) = match text.split_once("..") {
            Some((low, high)) => (ms(low)?, ms(high)?),
            None => (ms(text)?, ms(text)?),
        };
        match (low, high) {
            (low, high) if low > high => Err(format!("{text}: the low end is above the high end")),
            (Duration::ZERO, Duration::ZERO) => Ok(Pause::FlatOut),
            (low, high) => Ok(Pause::Between(low, high)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// Idle sessions opened (hello, welcome) and held through the run.
    pub sessions: usize,
    /// Conversations running at once, each on its own socket.
    pub conversations: usize,
    pub turns: usize,
    pub questions: Arc<[String]>,
    pub pause: Pause,
    /// Share of conversations by a signed-in demo customer asking about their orders.
    pub order_share: f64,
    /// Share of conversations whose last turn asks for a person.
    pub handoff_share: f64,
    /// A turn not ended by then counts as a `timeout`.
    pub turn_timeout: Duration,
}

impl ChatOptions {
    /// One question per line; blank lines and `#` comments are skipped.
    pub fn read_questions(path: &Path) -> Result<Arc<[String]>, LoadError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| LoadError::Questions { path: path.to_owned(), source })?;
        let questions: Arc<[String]> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_owned)
            .collect();
        if questions.is_empty() {
            return Err(LoadError::NoQuestions(path.to_owned()));
        }
        Ok(questions)
    }
}

#[derive(Debug)]
pub struct ChatReport {
    pub sessions_wanted: usize,
    /// Sessions welcomed and still open when the conversations ended.
    pub sessions_held: usize,
    pub turns_wanted: usize,
    pub turns_completed: usize,
    pub wall: Duration,
    pub latencies: Latencies,
    /// How completed turns ended, as a customer would see it.
    pub outcomes: Tally,
    pub errors: Tally,
    pub rss_before_kib: Option<u64>,
    pub rss_held_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
}

impl ChatReport {
    pub fn turns_per_second(&self) -> f64 {
        self.turns_completed as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// What one idle session costs the server, in KiB.
    pub fn rss_per_session_kib(&self) -> Option<f64> {
        let (before, held) = (self.rss_before_kib?, self.rss_held_kib?);
        (self.sessions_held > 0).then(|| (held as f64 - before as f64) / self.sessions_held as f64)
    }
}

impl std::fmt::Display for ChatReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kib = |v: Option<u64>| v.map_or("unknown".to_owned(), |v| format!("{:.1} MiB", v as f64 / 1024.0));
        writeln!(f, "chat: {} of {} sessions held", self.sessions_held, self.sessions_wanted)?;
        writeln!(
            f,
            "  turns: {} of {} in {:.2?}: {:.1} turns/s",
            self.turns_completed,
            self.turns_wanted,
            self.wall,
            self.turns_per_second()
        )?;
        writeln!(
            f,
            "  turn latency: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms",
            millis(self.latencies.percentile(0.5)),
            millis(self.latencies.percentile(0.9)),
            millis(self.latencies.percentile(0.99))
        )?;
        writeln!(f, "  outcomes: {}", self.outcomes)?;
        writeln!(f, "  errors: {}", self.errors)?;
        writeln!(
            f,
            "  server RSS: before {}, holding sessions {}, at the end {}",
            kib(self.rss_before_kib),
            kib(self.rss_held_kib),
            kib(self.rss_end_kib)
        )?;
        match self.rss_per_session_kib() {
            Some(per_session) => writeln!(f, "  RSS per held session: {per_session:.1} KiB"),
            None => writeln!(f, "  RSS per held session: unknown"),
        }
    }
}

/// Holds `sessions` idle sessions, drives the conversations, and reports.
pub async fn run_chat(target: &Target, options: &ChatOptions) -> Result<ChatReport, LoadError> {
    let rss = || target.server_pid.and_then(resident_kib);
    let rss_before_kib = rss();
    let mut errors = Tally::default();
    let stop_holding = CancellationToken::new();
    let closed_early = Arc::new(AtomicUsize::new(0));
    let url = target.ws_url("/v1/chat");
    let opened: Vec<Result<Socket, String>> = stream::iter(0..options.sessions)
        .map(|_| open_session(&url, None, options.turn_timeout))
        .buffer_unordered(CONNECTS_IN_FLIGHT)
        .collect()
        .await;
    let mut welcomed = 0;
    for socket in opened {
        match socket {
            Ok(socket) => {
                welcomed += 1;
                tokio::spawn(hold(socket, stop_holding.clone(), closed_early.clone()));
            }
            Err(kind) => errors.add(format!("session:{kind}")),
        }
    }
    let rss_held_kib = rss();

    let started = Instant::now();
    let plans: Vec<Plan> = (0..options.conversations).map(|index| Plan::new(index, options)).collect();
    let mut tasks = Vec::with_capacity(plans.len());
    for plan in plans {
        let token = match plan.customer {
            Some(customer) => Some(customer_token(customer, &target.identity_jwt_secret)?),
            None => None,
        };
        let (url, options) = (url.clone(), options.clone());
        tasks.push(tokio::spawn(async move { converse(&url, token, plan, &options).await }));
    }
    let (mut latencies, mut outcomes) = (Latencies::default(), Tally::default());
    for task in tasks {
        match task.await {
            Ok(outcome) => {
                latencies.merge(outcome.latencies);
                outcomes.merge(outcome.outcomes);
                errors.merge(outcome.errors);
            }
            Err(_) => errors.add("conversation_panicked"),
        }
    }
    let wall = started.elapsed();
    let rss_end_kib = rss();
    let sessions_held = welcomed - closed_early.load(Ordering::Relaxed);
    for _ in sessions_held..welcomed {
        errors.add("session:closed");
    }
    stop_holding.cancel();
    latencies.sort();
    Ok(ChatReport {
        sessions_wanted: options.sessions,
        sessions_held,
        turns_wanted: options.conversations * options.turns,
        turns_completed: latencies.len(),
        wall,
        latencies,
        outcomes,
        errors,
        rss_before_kib,
        rss_held_kib,
        rss_end_kib,
    })
}

/// What one conversation asks, decided up front so shares are exact rather than random.
struct Plan {
    index: usize,
    customer: Option<&'static (&'static str, &'static str, &'static str, &'static [&'static str])>,
    ends_with_handoff: bool,
}

impl Plan {
    fn new(index: usize, options: &ChatOptions) -> Self {
        let is_order = picks(options.order_share, index);
        // Counted from the other end, so handoffs and order questions overlap little.
        let ends_with_handoff = picks(options.handoff_share, options.conversations - 1 - index);
        let customer = is_order.then(|| &ORDER_CUSTOMERS[index % ORDER_CUSTOMERS.len()]);
        Plan { index, customer, ends_with_handoff }
    }

    fn question<'a>(&self, turn: usize, options: &'a ChatOptions) -> &'a str {
        if self.ends_with_handoff && turn + 1 == options.turns {
            return HANDOFF_REQUEST;
        }
        match self.customer {
            Some((_, _, _, questions)) => questions[turn % questions.len()],
            // Spread over the file so concurrent conversations ask different questions.
            None => &options.questions[(self.index * options.turns + turn) % options.questions.len()],
        }
    }
}

fn customer_token(&(id, name, email, _): &(&str, &str, &str, &[&str]), secret: &str) -> Result<String, LoadError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let claims = json!({ "sub": id, "email": email, "name": name, "iat": now, "exp": now + 3600 });
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    Ok(jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)?)
}

#[derive(Default)]
struct Outcome {
    latencies: Latencies,
    outcomes: Tally,
    errors: Tally,
}

async fn converse(url: &str, token: Option<String>, plan: Plan, options: &ChatOptions) -> Outcome {
    let mut outcome = Outcome::default();
    let mut socket = match open_session(url, token.as_deref(), options.turn_timeout).await {
        Ok(socket) => socket,
        Err(kind) => {
            outcome.errors.add(format!("conversation:{kind}"));
            return outcome;
        }
    };
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let mut with_a_person = false;
    for turn in 0..options.turns {
        let question = plan.question(turn, options);
        let expects_handoff = question == HANDOFF_REQUEST;
        let message = json!({ "type": "message", "id": format!("t{turn}"), "text": question }).to_string();
        let sent = Instant::now();
        if socket.send(Message::text(message)).await.is_err() {
            outcome.errors.add("turn:send");
            return outcome;
        }
        match finish_turn(&mut socket, sent + options.turn_timeout).await {
            // Asking for a person in a conversation already handed off gets
            // no second handoff: that is an answer, not a failure.
            Ok(ended) if expects_handoff && ended != TurnEnd::Handoff && !with_a_person => {
                outcome.errors.add("turn:no_handoff");
            }
            Ok(ended) => {
                with_a_person |= ended == TurnEnd::Handoff;
                outcome.latencies.record(sent.elapsed());
                outcome.outcomes.add(ended.as_str());
            }
            Err(TurnError::Lost(kind)) => {
                outcome.errors.add(kind);
                return outcome;
            }
            Err(TurnError::Failed(kind)) => outcome.errors.add(kind),
        }
        // No pause after the last reply: the customer is done.
        if let Pause::Between(low, high) = options.pause
            && turn + 1 < options.turns
        {
            tokio::time::sleep(rng.random_range(low..=high)).await;
        }
    }
    outcome
}

enum TurnError {
    /// The turn ended, wrongly; the conversation can go on.
    Failed(String),
    /// The socket is no use any more.
    Lost(&'static str),
}

/// How a turn that completed ended for the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TurnEnd {
    Answered,
    /// Asked to verify (sign in, or an order number and its email).
    VerifyRequired,
    Handoff,
}

impl TurnEnd {
    fn as_str(self) -> &'static str {
        match self {
            TurnEnd::Answered => "answered",
            TurnEnd::VerifyRequired => "verify_required",
            TurnEnd::Handoff => "handoff",
        }
    }
}

/// Reads the turn's frames up to its `typing: off`.
async fn finish_turn(socket: &mut Socket, deadline: Instant) -> Result<TurnEnd, TurnError> {
    let (mut typing, mut ended, mut failure) = (false, TurnEnd::Answered, None);
    loop {
        let text = match next_text(socket, deadline).await {
            Event::Frame(text) => text,
            Event::Closed => return Err(TurnError::Lost("turn:closed")),
            Event::TimedOut => return Err(TurnError::Lost("turn:timeout")),
        };
        let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
            return Err(TurnError::Lost("turn:bad_frame"));
        };
        match frame.kind.as_ref() {
            "typing" if frame.on == Some(true) => typing = true,
            "typing" => break,
            // Refused before the turn began (rate limit, bad frame): no typing follows.
            "error" if !typing => return Err(TurnError::Failed(error_kind(&frame))),
            "error" => failure = Some(error_kind(&frame)),
            "verify_required" => ended = TurnEnd::VerifyRequired,
            "handoff" => ended = TurnEnd::Handoff,
            _ => {}
        }
    }
    match failure {
        Some(kind) => Err(TurnError::Failed(kind)),
        None => Ok(ended),
    }
}

fn error_kind(frame: &Frame) -> String {
    format!("turn:error:{}", frame.code.as_deref().unwrap_or("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_is_a_range_a_fixed_time_or_flat_out() {
        let ms = Duration::from_millis;
        assert_eq!("200..500".parse(), Ok(Pause::Between(ms(200), ms(500))));
        assert_eq!("300".parse(), Ok(Pause::Between(ms(300), ms(300))));
        assert_eq!("0".parse(), Ok(Pause::FlatOut));
        assert!("500..200".parse::<Pause>().is_err());
        assert!("soon".parse::<Pause>().is_err());
    }

    #[test]
    fn a_question_file_with_no_questions_or_no_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let only_comments = dir.path().join("questions.txt");
        std::fs::write(&only_comments, "# policy questions\n\n   \n").unwrap();
        assert!(
            matches!(ChatOptions::read_questions(&only_comments), Err(LoadError::NoQuestions(p)) if p == only_comments)
        );
        let missing = dir.path().join("missing.txt");
        assert!(matches!(ChatOptions::read_questions(&missing), Err(LoadError::Questions { .. })));
        std::fs::write(&only_comments, "# a comment\n  Do you ship to Canada?  \n").unwrap();
        assert_eq!(&*ChatOptions::read_questions(&only_comments).unwrap(), ["Do you ship to Canada?".to_owned()]);
    }
}
