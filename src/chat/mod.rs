//! The chat interface: protocol types, the WebSocket gateway, sessions and
//! turns, and the fan-out of frames to every socket of a session.

pub mod fanout;
pub mod gateway;
pub mod hub;
pub mod limits;
pub mod protocol;
mod replay;
pub mod service;

pub use service::ChatService;
