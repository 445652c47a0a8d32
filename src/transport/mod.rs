//! Thin async drivers for the court LAN: the HTTP listener with its WebSocket endpoints.

pub mod limits;
