//! keel-api's configuration: the shared settings plus the server's own.

use keel_config::{Problems, Reader, Settings, Source};

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub health: keel_health::HealthConfig,
}

impl Config {
    /// Reads everything, collecting every problem before reporting.
    pub fn load(source: &dyn Source) -> Result<Config, Problems> {
        let mut r = Reader::new(source);
        let settings = Settings::read(&mut r);
        let health = keel_health::HealthConfig::read(&mut r);
        r.finish().map(|()| Config { settings, health })
    }
}
