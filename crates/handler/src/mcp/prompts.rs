use std::collections::BTreeMap;

use rmcp::model::{Prompt, PromptArgument, PromptMessage, Role};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PromptError(pub String);

/// A prompt: a named, argument-taking message template that walks a model through tools in order.
pub struct PromptDef {
    pub name: &'static str,
    pub description: &'static str,
    /// (name, description, required)
    pub arguments: &'static [(&'static str, &'static str, bool)],
    pub render: fn(&BTreeMap<String, String>) -> String,
}

impl PromptDef {
    pub fn listing(&self) -> Prompt {
        let arguments = self
            .arguments
            .iter()
            .map(|(name, description, required)| {
                let mut argument = PromptArgument::new(*name).with_description(*description);
                argument.required = Some(*required);
                argument
            })
            .collect::<Vec<_>>();
        Prompt::new(
            self.name,
            Some(self.description),
            (!arguments.is_empty()).then_some(arguments),
        )
    }

    pub fn render(
        &self,
        arguments: &BTreeMap<String, String>,
    ) -> Result<Vec<PromptMessage>, PromptError> {
        let missing: Vec<&str> = self
            .arguments
            .iter()
            .filter(|(name, _, required)| {
                *required && arguments.get(*name).is_none_or(|v| v.trim().is_empty())
            })
            .map(|(name, _, _)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(PromptError(format!(
                "prompt {} needs the argument(s): {}",
                self.name,
                missing.join(", ")
            )));
        }
        if let Some(unknown) = arguments
            .keys()
            .find(|key| !self.arguments.iter().any(|(name, _, _)| name == key))
        {
            let accepted: Vec<&str> = self.arguments.iter().map(|(name, _, _)| *name).collect();
            return Err(PromptError(format!(
                "prompt {} has no argument '{unknown}'; it accepts: {}",
                self.name,
                if accepted.is_empty() {
                    "none".to_string()
                } else {
                    accepted.join(", ")
                }
            )));
        }
        Ok(vec![PromptMessage::new_text(
            Role::User,
            (self.render)(arguments),
        )])
    }
}
