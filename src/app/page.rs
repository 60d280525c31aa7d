//! The HTML page of `kam report` and of the dashboard `kam serve` answers at `/`: one template,
//! one stylesheet and one script (plain JavaScript drawing SVG, no network), embedded in the
//! binary from `assets/`.
//!
//! The script draws from one data object `{model, transitions, forecast, customers}` whose parts
//! are the API's own responses (`GET /v1/model`, `GET /v1/model/transitions`,
//! `POST /v1/forecast`, `GET /v1/model/customers/summary`). The report embeds that object in the
//! page; the dashboard page embeds none and fetches the parts from the API.

use serde_json::Value;

const TEMPLATE: &str = include_str!("../../assets/report.html");
const STYLE: &str = include_str!("../../assets/report.css");
const SCRIPT: &str = include_str!("../../assets/report.js");

/// JSON that is safe inside a `<script>` element: `<`, `>` and `&` (only ever inside strings
/// in JSON) are written as `\u003c`, `\u003e` and `\u0026`, so no `</script>` or `<!--` can
/// end or change the element.
pub fn script_json(v: &Value) -> String {
    let text = serde_json::to_string(v).expect("a JSON value serializes");
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Fills `{{NAME}}` placeholders of `template` in one pass (inserted text is never rescanned).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else { break };
        let name = &rest[start + 2..start + len];
        out.push_str(&rest[..start]);
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => out.push_str(v),
            None => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The self-contained report: the page with `data` embedded.
pub fn report(title: &str, data: &Value) -> String {
    let data = format!("<script type=\"application/json\" id=\"kam-data\">{}</script>", script_json(data));
    fill(
        TEMPLATE,
        &[
            ("TITLE", &escape_html(title)),
            ("MODE", "report"),
            ("AUTH", "none"),
            ("STYLE", STYLE),
            ("DATA", &data),
            ("SCRIPT", SCRIPT),
        ],
    )
}

/// The dashboard shell: no data; the script fetches it from the API of the server that sent the
/// page. With `keys_required` the page asks for an API key before its first request.
pub fn dashboard(keys_required: bool) -> String {
    fill(
        TEMPLATE,
        &[
            ("TITLE", "kam dashboard"),
            ("MODE", "dashboard"),
            ("AUTH", if keys_required { "required" } else { "open" }),
            ("STYLE", STYLE),
            ("DATA", ""),
            ("SCRIPT", SCRIPT),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedded_json_cannot_close_the_script_element_and_reads_back_the_same() {
        let v = json!({"id": "</script><script>alert(1)</script>", "note": "a <!-- b & c"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>'), "{s}");
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
    }

    #[test]
    fn the_report_embeds_its_data_once_and_the_dashboard_none() {
        let report = report("model <x>", &json!({"model": {"id": "m"}}));
        assert_eq!(report.matches("id=\"kam-data\"").count(), 1);
        assert!(report.contains("<title>model &lt;x&gt;</title>"));
        assert!(report.contains("data-mode=\"report\""));
        let dashboard = dashboard(true);
        assert!(!dashboard.contains("id=\"kam-data\""));
        assert!(dashboard.contains("data-mode=\"dashboard\" data-auth=\"required\""));
        assert!(!dashboard.contains("{{"), "every placeholder is filled");
    }

    #[test]
    fn placeholders_inside_inserted_text_are_left_alone() {
        assert_eq!(fill("a{{X}}b{{Y}}", &[("X", "{{Y}}"), ("Y", "1")]), "a{{Y}}b1");
    }
}
