//! The rows of the report: a Markdown table on stdout and a JSON file.

use crate::util::J;

pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub value: String,
    pub target: String,
    /// None: a figure without a target.
    pub met: Option<bool>,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Raw figures per scenario, for the JSON file.
    pub details: Vec<(String, J)>,
}

impl Report {
    pub fn info(&mut self, scenario: &str, metric: &str, value: impl Into<String>) {
        self.rows.push(Row {
            scenario: scenario.into(),
            metric: metric.into(),
            value: value.into(),
            target: String::new(),
            met: None,
        });
    }

    pub fn check(
        &mut self,
        scenario: &str,
        metric: &str,
        value: impl Into<String>,
        target: &str,
        met: bool,
    ) {
        self.rows.push(Row {
            scenario: scenario.into(),
            metric: metric.into(),
            value: value.into(),
            target: target.into(),
            met: Some(met),
        });
    }

    pub fn failed(&mut self, scenario: &str, error: &str) {
        self.rows.push(Row {
            scenario: scenario.into(),
            metric: "FAILED".into(),
            value: error.replace('|', "/"),
            target: String::new(),
            met: Some(false),
        });
        self.detail(scenario, J::obj(vec![("error", J::str(error))]));
    }

    pub fn detail(&mut self, scenario: &str, j: J) {
        self.details.push((scenario.to_string(), j));
    }

    pub fn markdown(&self) -> String {
        let mut s =
            String::from("| Scenario | Metric | Result | Target | Met |\n|---|---|---|---|---|\n");
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "met",
                Some(false) => "**not met**",
                None => "",
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.scenario, r.metric, r.value, r.target, met
            ));
        }
        s
    }

    pub fn rows_json(&self) -> J {
        J::Arr(
            self.rows
                .iter()
                .map(|r| {
                    J::obj(vec![
                        ("scenario", J::str(&r.scenario)),
                        ("metric", J::str(&r.metric)),
                        ("result", J::str(&r.value)),
                        ("target", J::str(&r.target)),
                        ("met", r.met.map(J::Bool).unwrap_or(J::Null)),
                    ])
                })
                .collect(),
        )
    }
}
