//! The policy: what to do with an understood message. Written in code, not in
//! a prompt, so no wording of a message can talk its way past it.

use serde::Serialize;

use super::understand::{Intent, Signal, Understanding};
use crate::identity::Identity;

/// PROTOCOL.md §3 escalation reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    HumanRequested,
    SensitiveTopic,
    NegativeSentiment,
    LowConfidence,
    RepeatedFailure,
    PolicyException,
    Vip,
    ActionRequired,
}

impl EscalationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationReason::HumanRequested => "human_requested",
            EscalationReason::SensitiveTopic => "sensitive_topic",
            EscalationReason::NegativeSentiment => "negative_sentiment",
            EscalationReason::LowConfidence => "low_confidence",
            EscalationReason::RepeatedFailure => "repeated_failure",
            EscalationReason::PolicyException => "policy_exception",
            EscalationReason::Vip => "vip",
            EscalationReason::ActionRequired => "action_required",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Handoff(EscalationReason),
    /// A person already has the conversation; a new handoff would be noise.
    AlreadyWithAgent,
    VerifyRequired,
    OrderStatus,
    OrderChange,
    /// A return question from someone whose orders we may see: the policy
    /// applied to their order.
    ReturnWindow,
    ProductSearch,
    Knowledge,
    /// Not sure what was meant: ask, unless the knowledge base has it exactly.
    Clarify,
    Greeting,
    Unknown,
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Handoff(_) => "handoff",
            Action::AlreadyWithAgent => "already_with_agent",
            Action::VerifyRequired => "verify_required",
            Action::OrderStatus => "order_status",
            Action::OrderChange => "order_change",
            Action::ReturnWindow => "return_window",
            Action::ProductSearch => "product_search",
            Action::Knowledge => "knowledge",
            Action::Clarify => "clarify",
            Action::Greeting => "greeting",
            Action::Unknown => "unknown",
        }
    }
}

pub fn decide(u: &Understanding, identity: &Identity, escalated: bool) -> Action {
    // Sensitive topics, complaints and requests for a person always go to a
    // person. No setting turns this off.
    let forced = match u.signal {
        Some(Signal::HumanRequested) => Some(EscalationReason::HumanRequested),
        Some(Signal::SensitiveTopic) => Some(EscalationReason::SensitiveTopic),
        Some(Signal::NegativeSentiment) => Some(EscalationReason::NegativeSentiment),
        Some(Signal::DamagedGoods) => Some(EscalationReason::ActionRequired),
        None if u.intent == Intent::Complaint => Some(EscalationReason::NegativeSentiment),
        None if u.intent == Intent::HumanRequest => Some(EscalationReason::HumanRequested),
        // A declined card or a missing invoice is answered from the policies;
        // fraud and disputes carry the sensitive signal and went above.
        None => None,
    };
    if let Some(reason) = forced {
        return if escalated { Action::AlreadyWithAgent } else { Action::Handoff(reason) };
    }

    let guest = identity.scope().is_guest();
    // A customer we know asking to send something back gets their order's
    // window even when the wording leaves the reading unsure: the phrase
    // rules say it is a return, and the reply states only their own
    // order's dates and the policy.
    let their_return = matches!(u.intent, Intent::ReturnRefund | Intent::PolicyQuestion) && u.about_returns && !guest;
    if !u.is_confident() && !their_return {
        return Action::Clarify;
    }
    let needs_order = matches!(u.intent, Intent::OrderStatus | Intent::OrderChange);
    if needs_order && guest {
        return Action::VerifyRequired;
    }
    match u.intent {
        Intent::OrderStatus => Action::OrderStatus,
        Intent::OrderChange if escalated => Action::AlreadyWithAgent,
        Intent::OrderChange => Action::OrderChange,
        Intent::ReturnRefund | Intent::PolicyQuestion if u.about_returns && !guest => Action::ReturnWindow,
        Intent::ProductQuestion => Action::ProductSearch,
        Intent::PolicyQuestion | Intent::ReturnRefund | Intent::AccountHelp | Intent::BillingIssue => Action::Knowledge,
        Intent::Greeting => Action::Greeting,
        _ => Action::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::Understander;

    fn understand(text: &str) -> Understanding {
        let prompts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        Understander::load(&prompts).expect("the shipped rules load").understand(text, None)
    }

    fn verified() -> Identity {
        Identity::Verified { customer_id: "1".into(), email: None, name: None }
    }

    #[test]
    fn a_guest_asking_about_an_order_must_verify_first() {
        assert_eq!(decide(&understand("where is my order #1001?"), &Identity::Guest, false), Action::VerifyRequired);
        assert_eq!(decide(&understand("where is my order #1001?"), &verified(), false), Action::OrderStatus);
    }

    #[test]
    fn sensitive_messages_escalate_whoever_asks() {
        for identity in [Identity::Guest, verified()] {
            let action = decide(&understand("I'm calling my lawyer about order #1001"), &identity, false);
            assert_eq!(action, Action::Handoff(EscalationReason::SensitiveTopic));
        }
        let action = decide(&understand("let me talk to a person"), &Identity::Guest, false);
        assert_eq!(action, Action::Handoff(EscalationReason::HumanRequested));
    }

    #[test]
    fn a_return_question_from_a_customer_we_know_is_about_their_order() {
        assert_eq!(decide(&understand("can I still return my boots?"), &verified(), false), Action::ReturnWindow);
        assert_eq!(decide(&understand("can I still return my boots?"), &Identity::Guest, false), Action::Knowledge);
    }

    #[test]
    fn an_escalated_conversation_is_not_escalated_twice() {
        assert_eq!(decide(&understand("a human please"), &Identity::Guest, true), Action::AlreadyWithAgent);
    }
}
