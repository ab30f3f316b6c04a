//! A local Intercom over real HTTP: a small stateful model of contacts,
//! conversations, parts and tags. Every request is checked against the
//! OpenAPI description (and the token and `Intercom-Version` headers); a
//! violation is recorded and answered 400, and tests assert there were none.
//! Faults can be planned: statuses, 429 with `Retry-After`, stalls, an
//! outage for a while, and "lost responses" (done, then answered 500).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::openapi;

pub const TOKEN: &str = "dG9rOmludGVyY29tLXRlc3Q=";
pub const ADMIN_ID: &str = "991";

#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    RateLimited(u64),
    Stall(Duration),
    /// Waits, then fails without effect: the request never reached Intercom.
    Hang(Duration),
    /// The request takes effect, but the answer is a 500: a retry must not repeat it.
    LoseResponse,
}

#[derive(Debug, Clone)]
pub struct MockContact {
    pub id: String,
    pub role: String,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Not yet in the search index (Intercom's search lags its writes).
    pub unsearchable: bool,
}

impl MockContact {
    /// A user Intercom has but its search does not find yet (search lags writes).
    pub fn unsearchable_user(id: &str, external_id: Option<&str>, email: Option<&str>) -> Self {
        MockContact {
            id: id.into(),
            role: "user".into(),
            external_id: external_id.map(str::to_owned),
            email: email.map(str::to_owned),
            name: None,
            unsearchable: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Part {
    pub part_type: String,
    pub author_id: String,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct MockConversation {
    pub id: String,
    pub contact_id: String,
    pub body: String,
    pub parts: Vec<Part>,
    pub tags: Vec<String>,
    pub team_id: Option<String>,
}

impl MockConversation {
    pub fn notes(&self) -> Vec<&Part> {
        self.parts.iter().filter(|p| p.part_type == "note").collect()
    }

    pub fn comments(&self) -> Vec<&Part> {
        self.parts.iter().filter(|p| p.part_type == "comment").collect()
    }
}

#[derive(Default)]
struct Data {
    plan: VecDeque<Fault>,
    /// Every request whose path ends so stalls this long.
    stall: Option<(String, Duration)>,
    outage: Option<(Instant, u16)>,
    contacts: Vec<MockContact>,
    conversations: Vec<MockConversation>,
    tags: Vec<(String, String)>,
    /// `METHOD path` of every request, in order.
    requests: Vec<String>,
    violations: Vec<String>,
}

#[derive(Clone)]
pub struct MockIntercom {
    pub url: String,
    data: Arc<Mutex<Data>>,
}

impl MockIntercom {
    pub async fn start() -> Self {
        let data = Arc::new(Mutex::new(Data::default()));
        let app = Router::new().fallback(handle).with_state(data.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the mock");
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, data }
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The settings that point the service at this mock.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("INTERCOM_TOKEN", TOKEN.to_owned()),
            ("INTERCOM_API_URL", self.url.clone()),
            ("INTERCOM_ADMIN_ID", ADMIN_ID.to_owned()),
            ("INTERCOM_TIMEOUT_MS", "2000".to_owned()),
            ("INTERCOM_RETRY_BASE_MS", "20".to_owned()),
        ]
    }

    pub fn then(&self, fault: Fault) -> &Self {
        self.data().plan.push_back(fault);
        self
    }

    /// Stalls every request whose path ends with `suffix` (`None`: none).
    pub fn stall_paths(&self, stall: Option<(&str, Duration)>) {
        self.data().stall = stall.map(|(s, d)| (s.to_owned(), d));
    }

    /// Every request answers `status` for `length`.
    pub fn outage(&self, length: Duration, status: u16) {
        self.data().outage = Some((Instant::now() + length, status));
    }

    pub fn add_contact(&self, contact: MockContact) {
        self.data().contacts.push(contact);
    }

    pub fn contacts(&self) -> Vec<MockContact> {
        self.data().contacts.clone()
    }

    pub fn conversations(&self) -> Vec<MockConversation> {
        self.data().conversations.clone()
    }

    pub fn requests(&self) -> Vec<String> {
        self.data().requests.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.data().violations.clone()
    }

    pub fn tag_name(&self, id: &str) -> Option<String> {
        self.data().tags.iter().find(|(i, _)| i == id).map(|(_, n)| n.clone())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "type": "error.list", "request_id": "mock", "errors": [{ "code": code, "message": message }] });
    (status, axum::Json(body)).into_response()
}

async fn handle(
    State(data): State<Arc<Mutex<Data>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let json: Option<Value> = if body.is_empty() { None } else { serde_json::from_slice(&body).ok() };
    let fault = {
        let mut d = data.lock().unwrap();
        d.requests.push(format!("{method} {path}"));
        let mut violations = Vec::new();
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {TOKEN}")) {
            violations.push(format!("{method} {path}: wrong or missing bearer token"));
        }
        if headers.get("intercom-version").and_then(|v| v.to_str().ok()) != Some("2.16") {
            violations.push(format!("{method} {path}: Intercom-Version is not 2.16"));
        }
        if !body.is_empty() && json.is_none() {
            violations.push(format!("{method} {path}: the body is not JSON"));
        }
        if let Some(spec) = openapi::description() {
            violations.extend(openapi::check_request(spec, method.as_str(), &path, json.as_ref()));
        }
        if !violations.is_empty() {
            let message = violations.join("; ");
            d.violations.extend(violations);
            return error(StatusCode::BAD_REQUEST, "parameter_invalid", &message);
        }
        match (&d.outage, &d.stall) {
            (Some((until, status)), _) if Instant::now() < *until => Some(Fault::Status(*status)),
            (_, Some((suffix, how_long))) if path.ends_with(suffix.as_str()) => Some(Fault::Hang(*how_long)),
            _ => d.plan.pop_front(),
        }
    };
    match fault {
        Some(Fault::Status(status)) => {
            return error(StatusCode::from_u16(status).unwrap(), "service_unavailable", "planned failure");
        }
        Some(Fault::RateLimited(secs)) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded", "Exceeded rate limit");
            response.headers_mut().insert("retry-after", secs.to_string().parse().unwrap());
            return response;
        }
        Some(Fault::Stall(how_long)) => tokio::time::sleep(how_long).await,
        Some(Fault::Hang(how_long)) => {
            tokio::time::sleep(how_long).await;
            return error(StatusCode::GATEWAY_TIMEOUT, "timeout", "the request never arrived");
        }
        _ => {}
    }
    let answer = {
        let mut d = data.lock().unwrap();
        route(&mut d, &method, &path, json.unwrap_or(Value::Null))
    };
    if matches!(fault, Some(Fault::LoseResponse)) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the answer was lost");
    }
    answer
}

fn route(d: &mut Data, method: &Method, path: &str, body: Value) -> Response {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["me"]) => {
            ok(json!({ "type": "admin", "id": ADMIN_ID, "name": "API Bot", "email": "bot@example.com" }))
        }
        ("POST", ["contacts", "search"]) => {
            let (field, value) = (body["query"]["field"].as_str().unwrap_or(""), body["query"]["value"].as_str());
            let found: Vec<Value> = d
                .contacts
                .iter()
                .filter(|c| !c.unsearchable)
                .filter(|c| match field {
                    "external_id" => c.external_id.as_deref() == value,
                    "email" => c.email.as_deref() == value,
                    _ => false,
                })
                .map(contact_json)
                .collect();
            ok(json!({ "type": "list", "total_count": found.len(), "data": found }))
        }
        ("POST", ["contacts"]) => {
            let (external_id, email) = (body["external_id"].as_str(), body["email"].as_str());
            let existing = d.contacts.iter().find(|c| {
                (external_id.is_some() && c.external_id.as_deref() == external_id)
                    || (email.is_some() && c.email.as_deref() == email)
            });
            if let Some(c) = existing {
                let message = format!("A contact matching those details already exists with id={}", c.id);
                return error(StatusCode::CONFLICT, "conflict", &message);
            }
            let contact = MockContact {
                id: format!("{:024x}", d.contacts.len() as u128 + 0x5f00_0000_0000),
                role: body["role"].as_str().unwrap_or("user").to_owned(),
                external_id: external_id.map(str::to_owned),
                email: email.map(str::to_owned),
                name: body["name"].as_str().map(str::to_owned),
                unsearchable: false,
            };
            let answer = contact_json(&contact);
            d.contacts.push(contact);
            ok(answer)
        }
        ("POST", ["conversations"]) => {
            let contact_id = body["from"]["id"].as_str().unwrap_or_default().to_owned();
            if !d.contacts.iter().any(|c| c.id == contact_id) {
                return error(StatusCode::NOT_FOUND, "not_found", "User Not Found");
            }
            let id = format!("{}", 137_324_500_000_000u64 + d.conversations.len() as u64);
            let text = body["body"].as_str().unwrap_or_default().to_owned();
            d.conversations.push(MockConversation {
                id: id.clone(),
                contact_id,
                body: text.clone(),
                parts: vec![],
                tags: vec![],
                team_id: None,
            });
            ok(
                json!({ "type": "user_message", "id": "4023", "created_at": now(), "body": text, "message_type": "inapp", "conversation_id": id }),
            )
        }
        ("POST", ["conversations", "search"]) => {
            let filters = body["query"]["value"].as_array().cloned().unwrap_or_default();
            let wanted = |field: &str| {
                filters.iter().find(|f| f["field"] == field).and_then(|f| f["value"].as_str().map(str::to_owned))
            };
            let (contact, word) = (wanted("contact_ids"), wanted("source.body"));
            let found: Vec<Value> = d
                .conversations
                .iter()
                .filter(|c| contact.as_deref().is_none_or(|id| c.contact_id == id))
                .filter(|c| word.as_deref().is_none_or(|w| c.body.split_whitespace().any(|x| x == w)))
                .map(conversation_json)
                .collect();
            ok(json!({ "type": "conversation.list", "total_count": found.len(), "conversations": found }))
        }
        ("GET", ["conversations", id]) => match d.conversations.iter().find(|c| c.id == *id) {
            Some(c) => ok(conversation_json(c)),
            None => error(StatusCode::NOT_FOUND, "not_found", "Resource Not Found"),
        },
        ("POST", ["conversations", id, "reply"]) => {
            let Some(c) = d.conversations.iter_mut().find(|c| c.id == *id) else {
                return error(StatusCode::NOT_FOUND, "not_found", "Resource Not Found");
            };
            let author_id = body["admin_id"].as_str().or(body["intercom_user_id"].as_str()).unwrap_or_default();
            let part_type = body["message_type"].as_str().unwrap_or("comment");
            let body_html = format!("<p>{}</p>", body["body"].as_str().unwrap_or_default());
            c.parts.push(Part {
                part_type: part_type.into(),
                author_id: author_id.into(),
                body: body_html,
                created_at: now(),
            });
            ok(conversation_json(c))
        }
        ("POST", ["tags"]) => {
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            let id = match d.tags.iter().find(|(_, n)| n.eq_ignore_ascii_case(&name)) {
                Some((id, _)) => id.clone(),
                None => {
                    let id = format!("{}", 7_000 + d.tags.len());
                    d.tags.push((id.clone(), name.clone()));
                    id
                }
            };
            ok(json!({ "type": "tag", "id": id, "name": name }))
        }
        ("POST", ["conversations", id, "tags"]) => {
            let tag = body["id"].as_str().unwrap_or_default().to_owned();
            let Some(c) = d.conversations.iter_mut().find(|c| c.id == *id) else {
                return error(StatusCode::NOT_FOUND, "not_found", "Resource Not Found");
            };
            if !c.tags.contains(&tag) {
                c.tags.push(tag.clone());
            }
            ok(json!({ "type": "tag", "id": tag }))
        }
        ("POST", ["conversations", id, "parts"]) => {
            let Some(c) = d.conversations.iter_mut().find(|c| c.id == *id) else {
                return error(StatusCode::NOT_FOUND, "not_found", "Resource Not Found");
            };
            c.team_id = body["assignee_id"].as_str().map(str::to_owned);
            ok(conversation_json(c))
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", "the mock does not model this route"),
    }
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn contact_json(c: &MockContact) -> Value {
    json!({ "type": "contact", "id": c.id, "role": c.role, "external_id": c.external_id, "email": c.email, "name": c.name })
}

fn conversation_json(c: &MockConversation) -> Value {
    let parts: Vec<Value> = c
        .parts
        .iter()
        .map(|p| json!({ "type": "conversation_part", "part_type": p.part_type, "body": p.body, "created_at": p.created_at,
                         "author": { "type": if p.author_id == ADMIN_ID { "admin" } else { "user" }, "id": p.author_id } }))
        .collect();
    json!({
        "type": "conversation", "id": c.id, "source": { "type": "conversation", "body": c.body },
        "contacts": { "type": "contact.list", "contacts": [{ "type": "contact", "id": c.contact_id }] },
        "team_assignee_id": c.team_id,
        "conversation_parts": { "type": "conversation_part.list", "conversation_parts": parts, "total_count": parts.len() },
    })
}
