//! Thin async drivers for the court LAN: the accept loop and its caps, the HTTP listener with
//! its WebSocket endpoints (devices; phones in `phone`; the staff's console in `admin_ws`, what
//! it shows in `admin_view`; courtside screens in `screen`, what they show in `screen_view`).

pub mod admin;
pub mod admin_view;
pub mod admin_ws;
pub mod admission;
pub mod auth;
pub mod connections;
pub mod device;
pub mod failures;
pub mod http;
pub mod jwt;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod phone;
pub mod phone_history;
pub mod push;
pub mod screen;
pub mod screen_view;
pub mod tls;
