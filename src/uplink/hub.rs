//! placeholder
pub struct HubOptions;
pub struct HubSink;
