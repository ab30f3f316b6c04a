//! Escalation end to end: the help desk behind [`HelpDesk`], Intercom as
//! the one there is today ([`intercom`]).

pub mod desk;
pub mod intercom;

pub use desk::{Attempt, Contact, ContactRole, Customer, DeskError, DeskEvent, HelpDesk};
