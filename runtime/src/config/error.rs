//! Errors in kfn.yaml: each with its file, line, column and path; reported all at once.

use std::fmt;

/// One mistake in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file as it should be shown to the user (e.g. `kfn.yaml`).
    pub file: String,
    /// 1-based line of the offending key or value; 0 when the file could not be read.
    pub line: usize,
    /// 1-based column of the offending key or value; 0 when the file could not be read.
    pub column: usize,
    /// Where in the document, e.g. `bindings.page-enricher.every`; empty for the file
    /// as a whole (syntax errors, an empty file).
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `kfn.yaml:7:20: bindings.page-enricher.every: invalid duration '5x': ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every mistake found in one configuration file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One error per line, then `N error(s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.0 {
            writeln!(f, "{error}")?;
        }
        match self.0.len() {
            1 => write!(f, "1 error"),
            n => write!(f, "{n} errors"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_one_per_line_then_count() {
        let error = |path: &str| ConfigError {
            file: "kfn.yaml".into(),
            line: 7,
            column: 20,
            path: path.into(),
            message: "invalid duration '5x'".into(),
        };
        let errors = ConfigErrors(vec![error("bindings.a.every"), error("")]);
        assert_eq!(
            errors.to_string(),
            "kfn.yaml:7:20: bindings.a.every: invalid duration '5x'\n\
             kfn.yaml:7:20: invalid duration '5x'\n\
             2 errors"
        );
    }
}
