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
    ProductSearch,
    Knowledge,
    Greeting,
    Unknown,
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
        None if u.intent == Intent::BillingIssue => Some(EscalationReason::ActionRequired),
        None => None,
    };
    if let Some(reason) = forced {
        return if escalated { Action::AlreadyWithAgent } else { Action::Handoff(reason) };
    }

    let needs_order = matches!(u.intent, Intent::OrderStatus | Intent::OrderChange);
    if needs_order && identity.scope().is_guest() {
        return Action::VerifyRequired;
    }
    match u.intent {
        Intent::OrderStatus => Action::OrderStatus,
        Intent::OrderChange if escalated => Action::AlreadyWithAgent,
        Intent::OrderChange => Action::OrderChange,
        Intent::ProductQuestion => Action::ProductSearch,
        Intent::PolicyQuestion | Intent::ReturnRefund | Intent::AccountHelp => Action::Knowledge,
        Intent::Greeting => Action::Greeting,
        _ => Action::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::understand;

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
    fn an_escalated_conversation_is_not_escalated_twice() {
        assert_eq!(decide(&understand("a human please"), &Identity::Guest, true), Action::AlreadyWithAgent);
    }
}
