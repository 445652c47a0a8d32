//! The court's state as a sans-IO machine: devices, sessions, command queues.
