//! Cloud uplink: journal readers that deliver to MQTT and the notification hub, at least once.
