//! Device → gateway messages: JSON text in, a typed [`DeviceMessage`] or a [`ProtocolError`]
//! naming the message type and the field out. Never panics, whatever the input (property-tested
//! and fuzzed).
//!
//! The parse goes through a `serde_json::Value` and reads each field by hand rather than through
//! derived `Deserialize` impls: that is what lets every error name its field as a path
//! (`data[3].acc`), carry the batch's `seq`, and say what was wrong in words a firmware author
//! can act on. Unknown fields are ignored; `null` counts as absent.
//!
//! The device code is not taken from the payload: the connection's URL (`/ws/esp32/{code}/`)
//! names the device, so [`parse_device_message`] takes it as a parameter and fills
//! [`SensorBatch::device`] with it.
//!
//! [`render_device_message`] is the inverse, for simulators and tests: it writes exactly the
//! wire shapes the parser reads (V3.3's for seed-form batches), `f32` values in their shortest
//! form, so `parse(render(m)) == m`.

use serde::Serialize;
use serde::ser::SerializeSeq;
use serde_json::{Map, Value};

use super::untrusted::clip;
use super::validate::{self, IdKind, Invalid};
use super::{ErrorCode, ProtocolError};
use crate::batch::{BatchForm, CompactBatch, SeedBatch, SeedFrame, SensorBatch};

/// Most rows (compact samples or seed frames) one batch may carry. V3.3 sends 30; a 64 KiB
/// message holds at most about 5,000 six-channel rows.
pub const MAX_ROWS: usize = 16_384;
/// Longest session id, in characters (see [`IdKind::SessionId`]).
pub const MAX_SESSION_ID_CHARS: usize = IdKind::SessionId.max_chars();
/// Longest free-text field (`status`, `fw`, `sensor_type`, `command_id`), in characters.
pub const MAX_TEXT_CHARS: usize = 128;
/// Highest `sensor_id` (the node's UART frame carries it in one byte).
pub const MAX_SENSOR_ID: u64 = 255;
pub use validate::MAX_RATE_HZ;

/// A message from a device, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceMessage {
    /// `heartbeat`: the device is alive (and, from newer firmware, its battery and link).
    Heartbeat(Heartbeat),
    /// `batch_sensor_data`, either form.
    Batch(SensorBatch),
    /// `sensor_data`: one frame, held as a one-frame seed-form batch without `seq`.
    SensorData(SensorBatch),
    /// `status_update`: the device reports a state change (`START_COLLECTION_CONFIRMED`, …).
    StatusUpdate(StatusUpdate),
    /// `upload_complete`: the device has sent everything of a session.
    UploadComplete(UploadComplete),
    /// `poll_commands`: a device that does not take pushes asks for its commands.
    PollCommands(PollCommands),
    /// `ack`: the firmware's answer to a pushed command.
    Ack(CommandAck),
    /// `status_response`: the firmware's answer to `get_status`.
    StatusResponse(StatusReport),
    /// `ping`.
    Ping(Ping),
}

impl DeviceMessage {
    /// The wire `type` of the message.
    pub fn type_name(&self) -> &'static str {
        match self {
            DeviceMessage::Heartbeat(_) => "heartbeat",
            DeviceMessage::Batch(_) => "batch_sensor_data",
            DeviceMessage::SensorData(_) => "sensor_data",
            DeviceMessage::StatusUpdate(_) => "status_update",
            DeviceMessage::UploadComplete(_) => "upload_complete",
            DeviceMessage::PollCommands(_) => "poll_commands",
            DeviceMessage::Ack(_) => "ack",
            DeviceMessage::StatusResponse(_) => "status_response",
            DeviceMessage::Ping(_) => "ping",
        }
    }
}

/// `heartbeat`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Heartbeat {
    /// The device's own clock (V3.3: `millis()` since boot).
    pub timestamp: Option<i64>,
    /// The session the device believes it is in.
    pub session_id: Option<String>,
    /// The device's own state word (`idle`, `collecting`, …).
    pub status: Option<String>,
    /// Battery charge, percent (0–100).
    pub battery: Option<u8>,
    /// Wi-Fi signal, dBm.
    pub rssi: Option<i32>,
    /// Firmware version.
    pub fw: Option<String>,
}

/// `status_update`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The reported status (`START_COLLECTION_CONFIRMED` moves the session to collecting).
    pub status: String,
    /// The session it concerns.
    pub session_id: Option<String>,
}

/// `upload_complete`.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadComplete {
    /// The finished session.
    pub session_id: String,
    /// The device's clock.
    pub timestamp: Option<i64>,
    /// How many batches the device sent in the session (so seqs `0..batches` are expected);
    /// absent from V3.3.
    pub batches: Option<u64>,
}

/// `poll_commands`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PollCommands {
    /// The session the device is in (`""` on the wire reads as `None`).
    pub current_session: Option<String>,
    /// The device's own state word.
    pub status: Option<String>,
}

/// `ack`: the firmware's answer to a command it was pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandAck {
    /// The pushed command's `command_id`.
    pub command_id: String,
    /// Whether the device carried it out.
    pub success: bool,
    /// The device's clock.
    pub timestamp: Option<i64>,
}

/// `status_response`: kept as sent, for the admin view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusReport {
    /// The `get_status` command it answers.
    pub command_id: Option<String>,
    /// The device's clock.
    pub timestamp: Option<i64>,
    /// `connection` object (wifi_connected, server_connected, collection_active).
    pub connection: Option<Value>,
    /// `device` object (device_code, session_id, firmware_version).
    pub device: Option<Value>,
    /// `stats` object (blocks and bytes sent, failures, rates).
    pub stats: Option<Value>,
    /// `system` object (free heap, uptime).
    pub system: Option<Value>,
}

impl StatusReport {
    /// `device.firmware_version`, when reported.
    pub fn firmware_version(&self) -> Option<&str> {
        self.device.as_ref()?.get("firmware_version")?.as_str()
    }
}

/// `ping`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ping {
    /// The device's clock, echoed in `pong`.
    pub timestamp: Option<i64>,
}

/// Parse one text frame from device `device_code` (the code in the connection's URL).
pub fn parse_device_message(text: &str, device_code: &str) -> Result<DeviceMessage, ProtocolError> {
    // The compact batch is most of the traffic: try its typed fast path first (it declines
    // anything it does not accept in full, and the general parser then decides).
    if text.contains("\"samples\"")
        && let Some(batch) = fast::parse_compact_batch(text, device_code)
    {
        return Ok(DeviceMessage::Batch(batch));
    }
    parse_general(text, device_code)
}

/// [`parse_device_message`] without the compact fast path: the reference the fast path is
/// checked against (property tests, the fuzz target). Same results, slower.
#[doc(hidden)]
pub fn parse_device_message_reference(
    text: &str,
    device_code: &str,
) -> Result<DeviceMessage, ProtocolError> {
    parse_general(text, device_code)
}

/// The general parser: every message type, every error worded.
fn parse_general(text: &str, device_code: &str) -> Result<DeviceMessage, ProtocolError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ProtocolError::new(
            ErrorCode::InvalidJson,
            format!("message is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(obj) = value else {
        return Err(ProtocolError::new(
            ErrorCode::InvalidJson,
            "message must be a JSON object with a `type`",
        ));
    };
    let kind = match present(obj.get("type")) {
        None => {
            return Err(ProtocolError {
                field: Some("type".into()),
                ..ProtocolError::new(ErrorCode::MissingField, "message has no `type`")
            });
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(ProtocolError {
                field: Some("type".into()),
                ..ProtocolError::new(ErrorCode::InvalidField, "`type` must be a string")
            });
        }
    };
    let msg = Msg::new(&obj, kind);
    match kind {
        "heartbeat" => msg.heartbeat().map(DeviceMessage::Heartbeat),
        "batch_sensor_data" => msg.batch(device_code).map(DeviceMessage::Batch),
        "sensor_data" => msg.sensor_data(device_code).map(DeviceMessage::SensorData),
        "status_update" => msg.status_update().map(DeviceMessage::StatusUpdate),
        "upload_complete" => msg.upload_complete().map(DeviceMessage::UploadComplete),
        "poll_commands" => msg.poll_commands().map(DeviceMessage::PollCommands),
        "ack" => msg.ack().map(DeviceMessage::Ack),
        "status_response" => msg.status_response().map(DeviceMessage::StatusResponse),
        "ping" => msg.ping().map(DeviceMessage::Ping),
        other => Err(ProtocolError {
            field: Some("type".into()),
            ..ProtocolError::new(
                ErrorCode::UnknownType,
                format!("unknown message type `{}`", clip(other)),
            )
        }),
    }
}

/// A field that is absent or `null` is absent.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// One message being read: its object, its `type` (for error texts) and, once read, its `seq`.
struct Msg<'a> {
    obj: &'a Map<String, Value>,
    kind: &'a str,
    seq: Option<u64>,
}

impl<'a> Msg<'a> {
    fn new(obj: &'a Map<String, Value>, kind: &'a str) -> Msg<'a> {
        Msg {
            obj,
            kind,
            seq: None,
        }
    }

    fn error(&self, code: ErrorCode, field: &str, what: &str) -> ProtocolError {
        ProtocolError {
            code,
            field: Some(field.to_owned()),
            message: format!("{}: `{field}` {what}", self.kind),
            seq: self.seq,
        }
    }

    fn invalid(&self, field: &str, what: &str) -> ProtocolError {
        self.error(ErrorCode::InvalidField, field, what)
    }

    /// A value the shared validator refused, worded as this message's error.
    fn refused(&self, e: Invalid) -> ProtocolError {
        self.invalid(&e.field, &e.rule.to_string())
    }

    fn missing(&self, field: &str) -> ProtocolError {
        self.error(ErrorCode::MissingField, field, "is required")
    }

    fn field(&self, key: &str) -> Option<&'a Value> {
        present(self.obj.get(key))
    }

    fn required(&self, key: &str) -> Result<&'a Value, ProtocolError> {
        self.field(key).ok_or_else(|| self.missing(key))
    }

    // --- scalar readers: `path` names the value in errors -------------------------------------

    fn uint(&self, v: &Value, path: &str, max: u64) -> Result<u64, ProtocolError> {
        match v.as_u64() {
            Some(n) if n <= max => Ok(n),
            Some(_) => Err(self.invalid(path, &format!("must be at most {max}"))),
            None => Err(self.invalid(path, "must be a non-negative integer")),
        }
    }

    fn seq(&self, v: &Value) -> Result<u64, ProtocolError> {
        let n = self.uint(v, "seq", u64::MAX)?;
        validate::seq("seq", n).map_err(|e| self.refused(e))
    }

    fn timestamp(&self, v: &Value, path: &str) -> Result<i64, ProtocolError> {
        // `as_i64` is `None` for floats and for integers above i64::MAX.
        match v.as_i64() {
            Some(n) if n >= 0 => Ok(n),
            _ => Err(self.invalid(path, "must be a non-negative integer (ms)")),
        }
    }

    fn text(&self, v: &Value, path: &str, max_chars: usize) -> Result<String, ProtocolError> {
        let Some(s) = v.as_str() else {
            return Err(self.invalid(path, "must be a string"));
        };
        if s.chars().count() > max_chars {
            return Err(self.invalid(path, &format!("must be at most {max_chars} characters")));
        }
        if s.chars().any(char::is_control) {
            return Err(self.invalid(path, "must not contain control characters"));
        }
        Ok(s.to_owned())
    }

    /// A session id: a string (V3.3) or a non-negative integer (the seed backend's pushes),
    /// held as a string. `Ok(None)` for an empty string.
    fn session(&self, v: &Value, path: &str) -> Result<Option<String>, ProtocolError> {
        let id = match v {
            Value::Number(n) if n.as_u64().is_some() => n.to_string(),
            Value::String(s) if s.is_empty() => return Ok(None),
            Value::String(s) => s.clone(),
            _ => return Err(self.invalid(path, "must be a string or a non-negative integer")),
        };
        validate::id(IdKind::SessionId, path, &id).map_err(|e| self.refused(e))?;
        Ok(Some(id))
    }

    fn sample(&self, v: &Value, path: impl Fn() -> String) -> Result<f32, ProtocolError> {
        // Values beyond f32's range turn infinite on the cast and are refused with the rest.
        match v
            .as_f64()
            .map(|x| validate::finite("", f64::from(x as f32)))
        {
            Some(Ok(x)) => Ok(x as f32),
            _ => Err(self.invalid(&path(), "must be a finite number (within f32 range)")),
        }
    }

    fn triple(&self, v: &Value, path: &str) -> Result<[f32; 3], ProtocolError> {
        match v.as_array().map(Vec::as_slice) {
            Some([x, y, z]) => Ok([
                self.sample(x, || format!("{path}[0]"))?,
                self.sample(y, || format!("{path}[1]"))?,
                self.sample(z, || format!("{path}[2]"))?,
            ]),
            _ => Err(self.invalid(path, "must be an array of 3 numbers")),
        }
    }

    // --- optional top-level fields ---------------------------------------------------------

    fn opt_timestamp(&self, key: &str) -> Result<Option<i64>, ProtocolError> {
        self.field(key).map(|v| self.timestamp(v, key)).transpose()
    }

    fn opt_text(&self, key: &str) -> Result<Option<String>, ProtocolError> {
        self.field(key)
            .map(|v| self.text(v, key, MAX_TEXT_CHARS))
            .transpose()
    }

    fn opt_session(&self, key: &str) -> Result<Option<String>, ProtocolError> {
        Ok(self
            .field(key)
            .map(|v| self.session(v, key))
            .transpose()?
            .flatten())
    }

    fn required_session(&self, key: &str) -> Result<String, ProtocolError> {
        self.session(self.required(key)?, key)?
            .ok_or_else(|| self.invalid(key, "must not be empty"))
    }

    fn opt_int_in(&self, key: &str, lo: i64, hi: i64) -> Result<Option<i64>, ProtocolError> {
        let Some(v) = self.field(key) else {
            return Ok(None);
        };
        match v.as_i64() {
            Some(n) if (lo..=hi).contains(&n) => Ok(Some(n)),
            _ => Err(self.invalid(key, &format!("must be an integer from {lo} to {hi}"))),
        }
    }

    fn opt_object(&self, key: &str) -> Result<Option<Value>, ProtocolError> {
        match self.field(key) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(_) => Err(self.invalid(key, "must be an object")),
        }
    }

    /// `command_id`: a string, or an integer taken as its decimal text.
    fn command_id(&self, v: &Value) -> Result<String, ProtocolError> {
        let id = match v {
            Value::Number(n) if n.as_u64().is_some() => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return Err(self.invalid("command_id", "must be a string or an integer")),
        };
        validate::id(IdKind::CommandId, "command_id", &id).map_err(|e| self.refused(e))?;
        Ok(id)
    }

    // --- messages ---------------------------------------------------------------------------

    fn heartbeat(&self) -> Result<Heartbeat, ProtocolError> {
        Ok(Heartbeat {
            timestamp: self.opt_timestamp("timestamp")?,
            session_id: self.opt_session("session_id")?,
            status: self.opt_text("status")?,
            battery: self
                .opt_int_in("battery", 0, 100)?
                .and_then(|b| u8::try_from(b).ok()),
            rssi: self
                .opt_int_in("rssi", -200, 50)?
                .and_then(|r| i32::try_from(r).ok()),
            fw: self.opt_text("fw")?,
        })
    }

    fn batch(mut self, device_code: &str) -> Result<SensorBatch, ProtocolError> {
        // `seq` first, so that every later error can name the batch it belongs to.
        self.seq = self.field("seq").map(|v| self.seq(v)).transpose()?;
        let session_id = self.required_session("session_id")?;
        let form = if self.field("samples").is_some() {
            BatchForm::Compact(self.compact()?)
        } else {
            BatchForm::Seed(self.seed()?)
        };
        Ok(SensorBatch {
            device: device_code.to_owned(),
            session_id,
            seq: self.seq,
            form,
        })
    }

    fn compact(&self) -> Result<CompactBatch, ProtocolError> {
        let sensor_id = self.uint(self.required("sensor_id")?, "sensor_id", MAX_SENSOR_ID)?;
        let t0 = self.timestamp(self.required("t0")?, "t0")?;
        let rate_hz = self.required("rate_hz")?.as_f64().unwrap_or(f64::NAN);
        let rate_hz = validate::rate_hz("rate_hz", rate_hz).map_err(|e| self.refused(e))?;
        let rows = self.rows(self.required("samples")?, "samples")?;
        let channels = match rows[0].as_array().map(Vec::len) {
            Some(n @ (6 | 9)) => n,
            _ => return Err(self.invalid("samples[0]", "must be an array of 6 or 9 numbers")),
        };
        let mut samples = Vec::with_capacity(rows.len() * channels);
        for (i, row) in rows.iter().enumerate() {
            let values = match row.as_array() {
                Some(values) if values.len() == channels => values,
                _ => {
                    return Err(self.invalid(
                        &format!("samples[{i}]"),
                        &format!("must be an array of {channels} numbers, like samples[0]"),
                    ));
                }
            };
            for (c, v) in values.iter().enumerate() {
                samples.push(self.sample(v, || format!("samples[{i}][{c}]"))?);
            }
        }
        Ok(CompactBatch {
            // Both bounded above (255 and 9): the casts cannot truncate.
            sensor_id: sensor_id as u32,
            t0,
            rate_hz,
            channels: channels as u8,
            samples,
        })
    }

    /// A non-empty array of at most [`MAX_ROWS`] elements.
    fn rows(&self, v: &'a Value, path: &str) -> Result<&'a [Value], ProtocolError> {
        match v.as_array() {
            Some(rows) if rows.is_empty() => Err(self.invalid(path, "must not be empty")),
            Some(rows) if rows.len() > MAX_ROWS => {
                Err(self.invalid(path, &format!("must hold at most {MAX_ROWS} rows")))
            }
            Some(rows) => Ok(rows),
            None => Err(self.invalid(path, "must be an array")),
        }
    }

    fn seed(&self) -> Result<SeedBatch, ProtocolError> {
        // The seed backend reads `data_list`; V3.3 sends `data`. Either is accepted, `data` first.
        let (key, list) = match (self.field("data"), self.field("data_list")) {
            (Some(v), _) => ("data", v),
            (None, Some(v)) => ("data_list", v),
            (None, None) => return Err(self.missing("data")),
        };
        let frames = self
            .rows(list, key)?
            .iter()
            .enumerate()
            .map(|(i, v)| self.frame(v, &format!("{key}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SeedBatch {
            sensor_type: self.opt_text("sensor_type")?,
            timestamp: self.opt_timestamp("timestamp")?,
            frames,
        })
    }

    fn frame(&self, v: &Value, path: &str) -> Result<SeedFrame, ProtocolError> {
        let Some(frame) = v.as_object() else {
            return Err(self.invalid(path, "must be an object with `acc` and `gyro`"));
        };
        let field = |key: &str| present(frame.get(key));
        let required = |key: &str| {
            field(key).ok_or_else(|| {
                self.error(
                    ErrorCode::MissingField,
                    &format!("{path}.{key}"),
                    "is required",
                )
            })
        };
        Ok(SeedFrame {
            acc: self.triple(required("acc")?, &format!("{path}.acc"))?,
            gyro: self.triple(required("gyro")?, &format!("{path}.gyro"))?,
            angle: field("angle")
                .map(|a| self.triple(a, &format!("{path}.angle")))
                .transpose()?,
            sensor_id: field("sensor_id")
                .map(|s| self.uint(s, &format!("{path}.sensor_id"), MAX_SENSOR_ID))
                .transpose()?
                // Bounded by MAX_SENSOR_ID: the cast cannot truncate.
                .map(|s| s as u32),
            timestamp: field("timestamp")
                .map(|t| self.timestamp(t, &format!("{path}.timestamp")))
                .transpose()?,
        })
    }

    fn sensor_data(&self, device_code: &str) -> Result<SensorBatch, ProtocolError> {
        let session_id = self.required_session("session_id")?;
        let frame = self.frame(self.required("data")?, "data")?;
        Ok(SensorBatch {
            device: device_code.to_owned(),
            session_id,
            seq: None,
            form: BatchForm::Seed(SeedBatch {
                sensor_type: self.opt_text("sensor_type")?,
                timestamp: self.opt_timestamp("timestamp")?,
                frames: vec![frame],
            }),
        })
    }

    fn status_update(&self) -> Result<StatusUpdate, ProtocolError> {
        Ok(StatusUpdate {
            status: self.text(self.required("status")?, "status", MAX_TEXT_CHARS)?,
            session_id: self.opt_session("session_id")?,
        })
    }

    fn upload_complete(&self) -> Result<UploadComplete, ProtocolError> {
        Ok(UploadComplete {
            session_id: self.required_session("session_id")?,
            timestamp: self.opt_timestamp("timestamp")?,
            batches: self
                .field("batches")
                .map(|v| self.uint(v, "batches", u64::from(u32::MAX)))
                .transpose()?,
        })
    }

    fn poll_commands(&self) -> Result<PollCommands, ProtocolError> {
        Ok(PollCommands {
            current_session: self.opt_session("current_session")?,
            status: self.opt_text("status")?,
        })
    }

    fn ack(&self) -> Result<CommandAck, ProtocolError> {
        let command_id = self.command_id(self.required("command_id")?)?;
        let success = match self.required("success")? {
            Value::Bool(b) => *b,
            _ => return Err(self.invalid("success", "must be true or false")),
        };
        Ok(CommandAck {
            command_id,
            success,
            timestamp: self.opt_timestamp("timestamp")?,
        })
    }

    fn status_response(&self) -> Result<StatusReport, ProtocolError> {
        Ok(StatusReport {
            command_id: self
                .field("command_id")
                .map(|v| self.command_id(v))
                .transpose()?,
            timestamp: self.opt_timestamp("timestamp")?,
            connection: self.opt_object("connection")?,
            device: self.opt_object("device")?,
            stats: self.opt_object("stats")?,
            system: self.opt_object("system")?,
        })
    }

    fn ping(&self) -> Result<Ping, ProtocolError> {
        Ok(Ping {
            timestamp: self.opt_timestamp("timestamp")?,
        })
    }
}

// --- rendering --------------------------------------------------------------------------------

/// Render a device message as the JSON text a device sends, with `device_code` where V3.3
/// puts it (`heartbeat`, `batch_sensor_data`, `upload_complete`).
pub fn render_device_message(msg: &DeviceMessage, device_code: &str) -> String {
    let rendered = match msg {
        DeviceMessage::Batch(batch) => serde_json::to_string(&BatchWire::new(batch, device_code)),
        DeviceMessage::SensorData(batch) => serde_json::to_string(&SensorDataWire::new(batch)),
        DeviceMessage::Heartbeat(h) => serde_json::to_string(&object(
            "heartbeat",
            [
                ("device_code", Some(device_code.into())),
                ("timestamp", h.timestamp.map(Value::from)),
                ("session_id", h.session_id.clone().map(Value::from)),
                ("status", h.status.clone().map(Value::from)),
                ("battery", h.battery.map(Value::from)),
                ("rssi", h.rssi.map(Value::from)),
                ("fw", h.fw.clone().map(Value::from)),
            ],
        )),
        DeviceMessage::StatusUpdate(s) => serde_json::to_string(&object(
            "status_update",
            [
                ("status", Some(s.status.clone().into())),
                ("session_id", s.session_id.clone().map(Value::from)),
            ],
        )),
        DeviceMessage::UploadComplete(u) => serde_json::to_string(&object(
            "upload_complete",
            [
                ("session_id", Some(u.session_id.clone().into())),
                ("device_code", Some(device_code.into())),
                ("timestamp", u.timestamp.map(Value::from)),
                ("batches", u.batches.map(Value::from)),
            ],
        )),
        DeviceMessage::PollCommands(p) => serde_json::to_string(&object(
            "poll_commands",
            [
                (
                    "current_session",
                    Some(p.current_session.clone().unwrap_or_default().into()),
                ),
                ("status", p.status.clone().map(Value::from)),
            ],
        )),
        DeviceMessage::Ack(a) => serde_json::to_string(&object(
            "ack",
            [
                ("command_id", Some(a.command_id.clone().into())),
                ("success", Some(a.success.into())),
                ("timestamp", a.timestamp.map(Value::from)),
            ],
        )),
        DeviceMessage::StatusResponse(s) => serde_json::to_string(&object(
            "status_response",
            [
                ("command_id", s.command_id.clone().map(Value::from)),
                ("timestamp", s.timestamp.map(Value::from)),
                ("connection", s.connection.clone()),
                ("device", s.device.clone()),
                ("stats", s.stats.clone()),
                ("system", s.system.clone()),
            ],
        )),
        DeviceMessage::Ping(p) => serde_json::to_string(&object(
            "ping",
            [("timestamp", p.timestamp.map(Value::from))],
        )),
    };
    // Serializing these types cannot fail: every map key is a string, and a non-finite float
    // (which the parser never produces) renders as `null`.
    rendered.unwrap_or_default()
}

/// `{"type": kind, …}` with the present fields, in order.
fn object<const N: usize>(kind: &str, fields: [(&str, Option<Value>); N]) -> Value {
    let mut obj = Map::new();
    obj.insert("type".into(), kind.into());
    for (key, value) in fields {
        if let Some(v) = value {
            obj.insert(key.into(), v);
        }
    }
    Value::Object(obj)
}

/// `batch_sensor_data` as sent: compact or seed form (V3.3's field order).
#[derive(Serialize)]
struct BatchWire<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    session_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    t0: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_hz: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    samples: Option<Rows<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Vec<FrameWire<'a>>>,
}

/// One seed frame as V3.3 writes it: `acc`, `gyro`, `angle`, `sensor_id`, `timestamp`.
#[derive(Serialize)]
struct FrameWire<'a> {
    acc: &'a [f32; 3],
    gyro: &'a [f32; 3],
    #[serde(skip_serializing_if = "Option::is_none")]
    angle: Option<&'a [f32; 3]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
}

impl<'a> FrameWire<'a> {
    fn new(frame: &'a SeedFrame) -> FrameWire<'a> {
        FrameWire {
            acc: &frame.acc,
            gyro: &frame.gyro,
            angle: frame.angle.as_ref(),
            sensor_id: frame.sensor_id,
            timestamp: frame.timestamp,
        }
    }
}

impl<'a> BatchWire<'a> {
    fn new(batch: &'a SensorBatch, device_code: &'a str) -> BatchWire<'a> {
        let mut wire = BatchWire {
            kind: "batch_sensor_data",
            device_code: None,
            sensor_type: None,
            timestamp: None,
            session_id: &batch.session_id,
            seq: batch.seq,
            sensor_id: None,
            t0: None,
            rate_hz: None,
            samples: None,
            data: None,
        };
        match &batch.form {
            BatchForm::Compact(c) => {
                wire.sensor_id = Some(c.sensor_id);
                wire.t0 = Some(c.t0);
                wire.rate_hz = Some(c.rate_hz);
                wire.samples = Some(Rows(c));
            }
            BatchForm::Seed(s) => {
                wire.device_code = Some(device_code);
                wire.sensor_type = s.sensor_type.as_deref();
                wire.timestamp = s.timestamp;
                wire.data = Some(s.frames.iter().map(FrameWire::new).collect());
            }
        }
        wire
    }
}

/// `sensor_data` as sent: the batch's one frame under `data`.
#[derive(Serialize)]
struct SensorDataWire<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    session_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<FrameWire<'a>>,
}

impl<'a> SensorDataWire<'a> {
    fn new(batch: &'a SensorBatch) -> SensorDataWire<'a> {
        let seed = match &batch.form {
            BatchForm::Seed(s) => Some(s),
            BatchForm::Compact(_) => None,
        };
        SensorDataWire {
            kind: "sensor_data",
            session_id: &batch.session_id,
            sensor_type: seed.and_then(|s| s.sensor_type.as_deref()),
            timestamp: seed.and_then(|s| s.timestamp),
            data: seed.and_then(|s| s.frames.first()).map(FrameWire::new),
        }
    }
}

/// A compact batch's samples as rows of `channels` numbers, each in its shortest f32 form.
struct Rows<'a>(&'a CompactBatch);

impl Serialize for Rows<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let channels = usize::from(self.0.channels.max(1));
        let mut seq = serializer.serialize_seq(Some(self.0.samples.len() / channels))?;
        for row in self.0.samples.chunks(channels) {
            seq.serialize_element(row)?;
        }
        seq.end()
    }
}

mod fast;
#[cfg(test)]
mod tests;
