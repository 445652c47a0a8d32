//! Process life: signals, two-phase shutdown with a deadline, and (later) systemd notify.
