//! Prometheus' text exposition format, version 0.0.4: metric families as
//! `# HELP` and `# TYPE` lines followed by their samples, one per line,
//! label values escaped so that no value can end its quotes or its line.

use std::fmt::Write;

/// The Content-Type of a scrape's answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type, as its `# TYPE` line says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up, but for a reset; its name ends in `_total`.
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// Writes families one after another into one buffer. A family's `# HELP`
/// and `# TYPE` lines go out with its first sample, so a family with no
/// sample (no routes, say) leaves no line at all.
pub struct Writer<'a> {
    out: &'a mut String,
    family: Option<(&'static str, Kind, &'static str)>,
    header_due: bool,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut String) -> Writer<'a> {
        Writer {
            out,
            family: None,
            header_due: false,
        }
    }

    /// Start the family `name`: the samples written next belong to it.
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &'static str) {
        self.family = Some((name, kind, help));
        self.header_due = true;
    }

    /// One sample of the current family.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let Some((name, kind, help)) = self.family else {
            return;
        };
        if std::mem::take(&mut self.header_due) {
            self.out.push_str("# HELP ");
            self.out.push_str(name);
            self.out.push(' ');
            escape(help, false, self.out);
            self.out.push_str("\n# TYPE ");
            self.out.push_str(name);
            self.out.push(' ');
            self.out.push_str(kind.as_str());
            self.out.push('\n');
        }
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape(text, true, self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        write_value(value, self.out);
        self.out.push('\n');
    }
}

/// Text as the format writes it: `\` and line feeds escaped, and `"` too
/// in a label value (between quotes), not in a `# HELP` docstring;
/// everything else is UTF-8 as it is.
fn escape(text: &str, quoted: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' if quoted => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value as Go's ParseFloat reads it: whole numbers without a
/// fraction, the infinities as `+Inf` and `-Inf`.
fn write_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // Display never uses an exponent and prints the shortest digits
        // that read back as the same f64.
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_is_its_header_then_its_samples() {
        let mut out = String::new();
        let mut w = Writer::new(&mut out);
        w.family("x_empty_total", Kind::Counter, "never sampled");
        w.family(
            "x_things_total",
            Kind::Counter,
            "things, with a \\ and a\nline",
        );
        w.sample(&[("source", "a\"b\\c\nd")], 3.0);
        w.sample(&[("source", "é"), ("route", "r")], 0.5);
        w.family("x_up", Kind::Gauge, "up");
        w.sample(&[], 1.0);
        w.sample(&[], f64::INFINITY);
        assert_eq!(
            out,
            "# HELP x_things_total things, with a \\\\ and a\\nline\n\
             # TYPE x_things_total counter\n\
             x_things_total{source=\"a\\\"b\\\\c\\nd\"} 3\n\
             x_things_total{source=\"é\",route=\"r\"} 0.5\n\
             # HELP x_up up\n\
             # TYPE x_up gauge\n\
             x_up 1\n\
             x_up +Inf\n"
        );
    }

    #[test]
    fn large_and_fractional_values_are_written_in_full() {
        let mut out = String::new();
        write_value(18_446_744_073_709_551_615u64 as f64, &mut out);
        out.push(' ');
        write_value(1_796_654_307.123_456_7, &mut out);
        assert_eq!(out, "18446744073709552000 1796654307.1234567");
    }
}
