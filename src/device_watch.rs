//! The daemon's side of the device watch ([`shuttlegate_core::device_watch`]): one shared,
//! locked copy that ingest feeds with every stored batch, the analysis' publisher with every
//! journaled swing, and that the console (`device_list`) and its notifications read.
//!
//! Why a lock and not a task: each feed is a few hundred arithmetic steps over a batch the
//! caller already holds, far cheaper than a channel hop, and the readers are rare (a console's
//! request, the notifications' sample every 2 s). Each device's sensor map and full-scale
//! ranges are read from the settings in force at each batch, so a reload applies at once.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use shuttlegate_core::batch::SensorBatch;
use shuttlegate_core::conditions::{DeviceCondition, Kind};
use shuttlegate_core::device_watch::{DeviceFigures, DeviceWatch, FullScale};
use shuttlegate_core::protocol::FrameClock;

use crate::config::SettingsHandle;

/// The shared watch (cheap to clone).
#[derive(Clone)]
pub struct Watch {
    inner: Arc<Mutex<DeviceWatch>>,
    settings: SettingsHandle,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Watch {
    /// A watch of the devices `settings` configures, counting days in `frames`' timezone.
    pub fn new(settings: SettingsHandle, frames: FrameClock) -> Watch {
        Watch {
            inner: Arc::new(Mutex::new(DeviceWatch::new(frames))),
            settings,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DeviceWatch> {
        // The watch holds counts only: a panic elsewhere while it was held leaves them usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A batch of a configured device now stored (received at `received_ms`).
    pub fn batch(&self, batch: &SensorBatch, received_ms: i64) {
        let settings = self.settings.current();
        let Some(device) = settings.devices.iter().find(|d| d.code == batch.device) else {
            return;
        };
        let full_scale = FullScale {
            acc_g: device.acc_full_scale_g,
            gyro_dps: device.gyro_full_scale_dps,
        };
        self.lock()
            .handle_batch(batch, |id| device.position_of(id), full_scale, received_ms);
    }

    /// A swing of `device` journaled at `now_ms`.
    pub fn swing(&self, device: &str, now_ms: i64) {
        self.lock().handle_swing(device, now_ms);
    }

    /// What `device_list` shows of `device` at `now_ms`.
    pub fn figures(&self, device: &str, now_ms: i64) -> Option<DeviceFigures> {
        self.lock().figures(device, now_ms)
    }

    /// The device conditions active now.
    pub fn conditions(&self) -> Vec<DeviceCondition> {
        self.lock().conditions()
    }
}

/// `/metrics`: `device_conditions{kind}`, the devices (or nodes) in each condition now.
#[derive(Debug)]
pub struct WatchCollector(pub Watch);

impl Collector for WatchCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let active = self.0.conditions();
        let mut family = encoder.encode_descriptor(
            "device_conditions",
            "Device conditions active now, by kind: clock_skew (devices whose clock is off the gateway's), sensor_saturation (nodes stuck at full scale)",
            None,
            MetricType::Gauge,
        )?;
        for (kind, label) in [
            (Kind::ClockSkew, "clock_skew"),
            (Kind::SensorSaturation, "sensor_saturation"),
        ] {
            let n = active.iter().filter(|c| c.kind == kind).count();
            let gauge = ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
            gauge.encode(family.encode_family(&[("kind", label)])?)?;
        }
        Ok(())
    }
}
