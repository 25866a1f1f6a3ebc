//! Durations (`500ms`, `1s`, `5m`, `1h`) and sizes (`64MiB`, `1GB`) as written in kfn.yaml.

use std::time::Duration;

/// Parses a duration: a whole number followed by `ms`, `s`, `m` or `h`. Zero is allowed
/// here; callers that need a positive duration say so with [`positive_duration`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration '{text}': expected a whole number followed by ms, s, m or h (e.g. 500ms, 1s, 5m)"
        )
    };
    let (number, unit) = split_number(text).ok_or_else(invalid)?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(invalid()),
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration '{text}' is too large"))
}

/// Parses a duration that must be greater than zero (`every`, `tumbling`, `cpu-time`).
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "duration '{text}' must be greater than zero (e.g. 1s)"
        ));
    }
    Ok(duration)
}

/// Parses a size: a whole number followed by `B`, `KiB`, `MiB`, `GiB` (1024-based) or
/// `KB`, `MB`, `GB` (1000-based); must be greater than zero.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "invalid size '{text}': expected a whole number followed by B, KiB, MiB, GiB, KB, MB or GB (e.g. 64MiB)"
        )
    };
    let (number, unit) = split_number(text).ok_or_else(invalid)?;
    let unit = unit.trim_start();
    let bytes_per_unit: u64 = match unit {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(invalid()),
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let bytes = number
        .checked_mul(bytes_per_unit)
        .ok_or_else(|| format!("size '{text}' is too large"))?;
    if bytes == 0 {
        return Err(format!(
            "size '{text}' must be greater than zero (e.g. 64MiB)"
        ));
    }
    Ok(bytes)
}

/// Splits `"500ms"` into `("500", "ms")`; `None` when there is no leading digit.
fn split_number(text: &str) -> Option<(&str, &str)> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    (digits > 0).then(|| text.split_at(digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "", "5", "5x", "s", "-1s", "1.5s", " 1s", "1 s", "1S", "1sec",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.starts_with("invalid duration"), "{bad}: {err}");
        }
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(
            parse_duration("9999999999999999h")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn positive_durations() {
        assert_eq!(positive_duration("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(
            positive_duration("0ms").unwrap_err(),
            "duration '0ms' must be greater than zero (e.g. 1s)"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("3MB"), Ok(3_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("100B"), Ok(100));
        for bad in ["", "64", "64mb", "64M", "MiB", "1.5MiB", "64TiB"] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.starts_with("invalid size"), "{bad}: {err}");
        }
        assert!(
            parse_size("0MiB")
                .unwrap_err()
                .contains("greater than zero")
        );
        assert!(
            parse_size("99999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
    }
}
