//! The spelling rules for names: Kafka topics, bindings and stores, functions, JSON
//! pointers and SSE routes. Each returns the user-facing message on failure.

/// A Kafka topic: 1..=249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`
/// (the broker's own rule).
pub fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("topic name is empty: give a name like page-events".to_owned());
    }
    if topic == "." || topic == ".." {
        return Err(format!(
            "invalid topic name '{topic}': '.' and '..' are not allowed"
        ));
    }
    if topic.chars().count() > 249 {
        return Err(format!(
            "invalid topic name '{}...': longer than 249 characters",
            topic.chars().take(20).collect::<String>()
        ));
    }
    if let Some(bad) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!(
            "invalid topic name '{topic}': {bad:?} is not allowed (use letters, digits, '.', '_' and '-')"
        ));
    }
    Ok(())
}

/// A binding, store or function name: non-empty `[a-zA-Z0-9_-]`.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} name is empty"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-".contains(*c)))
    {
        return Err(format!(
            "invalid {what} name '{name}': {bad:?} is not allowed (use letters, digits, '_' and '-')"
        ));
    }
    Ok(())
}

/// A JSON pointer (RFC 6901) into a record's JSON value: starts with `/`, and every `~`
/// is followed by `0` or `1`.
pub fn check_pointer(pointer: &str) -> Result<(), String> {
    if !pointer.starts_with('/') {
        return Err(format!(
            "invalid JSON pointer '{pointer}': it must start with '/' (e.g. /name or /user/id)"
        ));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "invalid JSON pointer '{pointer}': '~' must be followed by 0 or 1 (write ~0 for '~' and ~1 for '/')"
            ));
        }
    }
    Ok(())
}

/// An SSE route: starts with `/`, has no empty segments, stays clear of the runtime's own
/// routes (`/`, `/api/...`, `/static/...`).
pub fn check_route(route: &str) -> Result<(), String> {
    if !route.starts_with('/') {
        return Err(format!(
            "invalid route '{route}': it must start with '/' (e.g. /analytics)"
        ));
    }
    if route == "/" {
        return Err("route '/' is the dashboard: choose another, e.g. /analytics".to_owned());
    }
    for reserved in ["/api", "/static"] {
        if route == reserved || route.starts_with(&format!("{reserved}/")) {
            return Err(format!(
                "route '{route}' is reserved for the runtime ({reserved}/...): choose another, e.g. /analytics"
            ));
        }
    }
    if let Some(bad) = route
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/._~-".contains(*c)))
    {
        return Err(format!(
            "invalid route '{route}': {bad:?} is not allowed (use letters, digits, '/', '.', '_', '~' and '-')"
        ));
    }
    if route[1..].split('/').any(str::is_empty) {
        return Err(format!(
            "invalid route '{route}': empty path segment (no '//' and no trailing '/')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        for good in ["R1", "page.events", "a_b-c", "x", &"a".repeat(249), "..."] {
            assert_eq!(check_topic(good), Ok(()), "{good}");
        }
        assert!(check_topic("").is_err());
        assert!(check_topic(".").is_err());
        assert!(check_topic("..").is_err());
        assert!(check_topic(&"a".repeat(250)).unwrap_err().contains("249"));
        assert_eq!(
            check_topic("R 2").unwrap_err(),
            "invalid topic name 'R 2': ' ' is not allowed (use letters, digits, '.', '_' and '-')"
        );
        assert!(check_topic("a/b").is_err());
        assert!(check_topic("é").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(check_name("binding", "page-supplier_2"), Ok(()));
        assert!(check_name("binding", "").is_err());
        assert!(check_name("binding", "a.b").is_err());
        assert!(check_name("function", "../x").is_err());
    }

    #[test]
    fn pointers() {
        for good in ["/name", "/a/b", "/", "/a~0b", "/a~1b", "/0"] {
            assert_eq!(check_pointer(good), Ok(()), "{good}");
        }
        assert!(
            check_pointer("name")
                .unwrap_err()
                .contains("must start with '/'")
        );
        assert!(check_pointer("").is_err());
        assert!(
            check_pointer("/a~2")
                .unwrap_err()
                .contains("'~' must be followed")
        );
        assert!(check_pointer("/a~").is_err());
    }

    #[test]
    fn routes() {
        for good in ["/analytics", "/a/b", "/apix", "/staticky", "/v1.0/x_y~z"] {
            assert_eq!(check_route(good), Ok(()), "{good}");
        }
        for bad in [
            "analytics",
            "/",
            "/api",
            "/api/x",
            "/static/x",
            "/a//b",
            "/a/",
            "/a b",
            "/a?b",
        ] {
            assert!(check_route(bad).is_err(), "{bad}");
        }
    }
}
