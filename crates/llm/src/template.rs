//! Rendering a GGUF model's own chat template (`tokenizer.chat_template`, Jinja) with
//! minijinja, so prompts are formatted exactly as the model was trained.
//!
//! Templates only ever see `{role, content}` string messages: tool calls and tool
//! results are folded into the text by `tools` before rendering, which keeps every
//! template working, including ones that know nothing of tools (SmolLM2's).

use minijinja::{Environment, ErrorKind, Value, context};
use serde::Serialize;

/// ChatML, for GGUF files that carry no template.
const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TemplateMessage {
    pub role: &'static str,
    pub content: String,
}

pub(crate) struct ChatTemplate {
    env: Environment<'static>,
}

impl ChatTemplate {
    pub fn new(source: Option<&str>) -> Result<Self, String> {
        let mut env = Environment::new();
        // HF templates are written against Python's Jinja: `.strip()`, `.startswith()`…
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<Value, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned("chat", source.unwrap_or(CHATML).to_owned())
            .map_err(|e| format!("the chat template does not parse: {e}"))?;
        Ok(Self { env })
    }

    pub fn render(
        &self,
        messages: &[TemplateMessage],
        bos_token: &str,
        eos_token: &str,
    ) -> Result<String, String> {
        let template = self.env.get_template("chat").map_err(|e| e.to_string())?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => bos_token,
                eos_token => eos_token,
            })
            .map_err(|e| format!("the chat template failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template, as stored in its GGUF.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn msg(role: &'static str, content: &str) -> TemplateMessage {
        TemplateMessage {
            role,
            content: content.to_owned(),
        }
    }

    #[test]
    fn smollm2_template_renders_chatml_with_a_generation_prompt() {
        let template = ChatTemplate::new(Some(SMOLLM2)).unwrap();
        let out = template
            .render(
                &[msg("system", "Be brief."), msg("user", "Hi")],
                "",
                "<|im_end|>",
            )
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn smollm2_template_adds_its_default_system_prompt_when_none_is_given() {
        let template = ChatTemplate::new(Some(SMOLLM2)).unwrap();
        let out = template.render(&[msg("user", "Hi")], "", "").unwrap();
        assert!(out.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
    }

    #[test]
    fn python_string_methods_and_raise_exception_work_in_templates() {
        let template = ChatTemplate::new(Some(
            "{% if messages[0].role != 'user' %}{{ raise_exception('user first') }}{% endif %}{{ messages[0].content.strip() }}",
        ))
        .unwrap();
        assert_eq!(
            template.render(&[msg("user", "  x  ")], "", "").unwrap(),
            "x"
        );
        let err = template.render(&[msg("system", "x")], "", "").unwrap_err();
        assert!(err.contains("user first"), "{err}");
    }

    #[test]
    fn a_missing_template_falls_back_to_chatml() {
        let template = ChatTemplate::new(None).unwrap();
        let out = template.render(&[msg("user", "Hi")], "", "").unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
