//! `--key value` command-line options, checked against what each mode accepts.

use std::collections::HashMap;

pub struct Args(HashMap<String, String>);

fn checked_url(url: &str) -> Result<String, String> {
    if !url.starts_with("ws://") {
        return Err(format!("--url must be ws://HOST:PORT, not {url}"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl Args {
    pub fn parse(argv: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut argv = argv.peekable();
        while let Some(flag) = argv.next() {
            let key = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {flag}"))?;
            let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
            map.insert(key.to_string(), value);
        }
        Ok(Self(map))
    }

    /// Rejects options the mode does not use, so a typo cannot silently fall
    /// back to a default and skew a benchmark.
    pub fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|key| !allowed.contains(&key.as_str())) {
            Some(key) => Err(format!("--{key} is not an option of this mode")),
            None => Ok(()),
        }
    }

    pub fn url(&self) -> Result<String, String> {
        let url = self.0.get("url").ok_or("--url is required")?;
        checked_url(url)
    }

    /// `--url` as a comma-separated list: the servers of a cluster, clients spread over them.
    pub fn urls(&self) -> Result<Vec<String>, String> {
        let urls = self.0.get("url").ok_or("--url is required")?;
        urls.split(',').map(checked_url).collect()
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, String> {
        self.0.get(key).map_or(Ok(default), |value| {
            value
                .parse()
                .map_err(|_| format!("--{key} wants a whole number, not {value}"))
        })
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, String> {
        self.0.get(key).map_or(Ok(default), |value| {
            value
                .parse::<f64>()
                .ok()
                .filter(|number| number.is_finite() && *number >= 0.0)
                .ok_or_else(|| format!("--{key} wants a non-negative number, not {value}"))
        })
    }
}
