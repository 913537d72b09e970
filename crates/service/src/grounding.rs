//! Keeping a small model's answer inside the knowledge ("extract or quote"): a
//! 135M-parameter model often retrieves the right passage and then answers
//! something else ("one-year, three-month" for a warranty of 17 months). With the
//! agent's quote setting on, the answer stream is wrapped: when the finished answer
//! does not use the best passage, the passage's most relevant sentences are
//! appended as a quote with their citation number; and when nothing relevant was
//! retrieved, the agent says it does not know without asking the model.

use agentbase_core::model::{
    ChatMessage, ChatModel, ChatRequest, FinishReason, ModelEvent, ModelStream, Role, Usage,
};
use agentbase_core::quote::{QuotePolicy, pick, quote, uses};
use agentbase_core::{Agent, prompt};
use futures_util::StreamExt;

use crate::knowledge::Retrieved;

/// Models with fewer weights than this get the quote fallback unless the agent
/// says otherwise.
pub const SMALL_MODEL_PARAMETERS: u64 = 1_000_000_000;

/// Whether `agent` answering with `model` quotes (its own setting, else on for
/// models under [`SMALL_MODEL_PARAMETERS`]).
pub fn quoting(agent: &Agent, model: &dyn ChatModel) -> bool {
    agent.quote_fallback.unwrap_or_else(|| {
        model
            .parameters()
            .is_some_and(|p| p < SMALL_MODEL_PARAMETERS)
    })
}

/// Knowledge entries a small model is given (the best first).
const SMALL_MODEL_ENTRIES: usize = 3;

/// Writes the knowledge into the last user message (see
/// `prompt::knowledge_in_question`), at most [`SMALL_MODEL_ENTRIES`] entries.
pub(crate) fn inline_knowledge(
    history: &mut [ChatMessage],
    entries: &[prompt::KnowledgeEntry<'_>],
) {
    let n = SMALL_MODEL_ENTRIES;
    if let Some(last) = history.iter_mut().rev().find(|m| m.role == Role::User) {
        last.content =
            prompt::knowledge_in_question(&last.content, &entries[..entries.len().min(n)]);
    }
}

/// The answer stream of a turn: the model's, wrapped with the quote fallback when
/// the agent quotes and has knowledge. A quoting agent that found nothing relevant
/// answers [`DONT_KNOW`] without the model, unless it has actions to call.
pub(crate) fn answer(
    agent: &Agent,
    model: &dyn ChatModel,
    request: ChatRequest,
    knowledge: Option<&[Retrieved]>,
) -> ModelStream {
    let Some(knowledge) = knowledge.filter(|_| quoting(agent, model)) else {
        return model.stream(request);
    };
    let question = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| question_of(&m.content).to_owned())
        .unwrap_or_default();
    let texts: Vec<&str> = knowledge.iter().map(|k| k.text.as_str()).collect();
    let excerpts: Vec<Excerpt> = pick(&question, &texts, QuotePolicy::SHIPPED)
        .into_iter()
        .map(|(rank, text)| Excerpt {
            title: knowledge[rank].title.clone(),
            number: rank + 1,
            text,
        })
        .collect();
    if excerpts.is_empty() {
        return if request.tools.is_empty() {
            dont_know()
        } else {
            model.stream(request)
        };
    }
    let passage = Passage { question, excerpts };
    with_quote(model.stream(request), passage)
}

/// What the agent says when the knowledge has nothing relevant and quoting is on.
pub const DONT_KNOW: &str = "I don't know: I could not find this in my knowledge base.";

/// What an answer is checked against: the excerpts chosen by
/// [`QuotePolicy::SHIPPED`], the best first.
pub struct Passage {
    pub question: String,
    /// Never empty.
    pub excerpts: Vec<Excerpt>,
}

/// One quotable run of sentences.
pub struct Excerpt {
    /// The title of the knowledge entry it comes from.
    pub title: String,
    /// 1-based citation number of that entry in the knowledge given to the model.
    pub number: usize,
    /// The sentences quoted when the answer does not use them.
    pub text: String,
}

impl Passage {
    /// What follows `answer`: nothing when it uses the best excerpt, else a quote
    /// of each excerpt it does not use.
    fn quotes_after(&self, answer: &str) -> Option<String> {
        let best = self.excerpts.first()?;
        if uses(answer, &best.text, &self.question) {
            return None;
        }
        Some(
            self.excerpts
                .iter()
                .filter(|e| !uses(answer, &e.text, &self.question))
                .map(|e| quote(&e.title, e.number, &e.text))
                .collect(),
        )
    }
}

/// Wraps `stream` so that, at its end, quotes of `passage` are added when the
/// streamed answer does not use its best excerpt (see `Passage::quotes_after`).
/// Tool calls pass through untouched (a turn that ends in tool calls is not an
/// answer yet).
pub fn with_quote(stream: ModelStream, passage: Passage) -> ModelStream {
    let state = (stream, String::new(), false, false, passage);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut stream, mut answer, mut tools, done, passage)| async move {
            if done {
                return None;
            }
            match stream.next().await {
                Some(Ok(ModelEvent::TextDelta(d))) => {
                    answer.push_str(&d);
                    Some((
                        Ok(ModelEvent::TextDelta(d)),
                        (stream, answer, tools, false, passage),
                    ))
                }
                Some(Ok(ModelEvent::Finish { reason, usage })) => {
                    let quotes = (!tools && reason != FinishReason::ToolCalls)
                        .then(|| passage.quotes_after(&answer))
                        .flatten();
                    let Some(q) = quotes else {
                        return Some((
                            Ok(ModelEvent::Finish { reason, usage }),
                            (stream, answer, tools, true, passage),
                        ));
                    };
                    // The quotes go out as one more text delta, then the finish.
                    let rest: ModelStream =
                        Box::pin(futures_util::stream::iter([Ok(ModelEvent::Finish {
                            reason,
                            usage,
                        })]));
                    Some((
                        Ok(ModelEvent::TextDelta(q)),
                        (rest, answer, true, false, passage),
                    ))
                }
                Some(Ok(other)) => {
                    if matches!(other, ModelEvent::ToolCallStart { .. }) {
                        tools = true;
                    }
                    Some((Ok(other), (stream, answer, tools, false, passage)))
                }
                Some(Err(e)) => Some((Err(e), (stream, answer, tools, true, passage))),
                None => None,
            }
        },
    ))
}

/// The user's question in a message [`inline_knowledge`] may have rewritten.
fn question_of(message: &str) -> &str {
    match message.rfind("\n\nQuestion: ") {
        Some(i) => {
            let rest = &message[i + "\n\nQuestion: ".len()..];
            rest.strip_suffix(prompt::SMALL_MODEL_TASK)
                .unwrap_or(rest)
                .trim_end()
        }
        None => message,
    }
}

/// The answer of a quoting agent when nothing relevant was retrieved.
pub fn dont_know() -> ModelStream {
    Box::pin(futures_util::stream::iter([
        Ok(ModelEvent::TextDelta(DONT_KNOW.to_owned())),
        Ok(ModelEvent::Finish {
            reason: FinishReason::Stop,
            usage: Usage::default(),
        }),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WARRANTY: &str = "Our mowers are built to last. The warranty covers parts and \
labour for 17 months from the date of purchase. Replacement blades cost 12 euros each \
and ship within two days.\n\nContact support by email.";

    #[tokio::test]
    async fn a_quote_is_appended_only_when_the_answer_ignores_the_passage() {
        let run = |answer: &'static str| async move {
            let inner: ModelStream = Box::pin(futures_util::stream::iter([
                Ok(ModelEvent::TextDelta(answer.to_owned())),
                Ok(ModelEvent::Finish {
                    reason: FinishReason::Stop,
                    usage: Usage::default(),
                }),
            ]));
            let out: Vec<_> = with_quote(
                inner,
                Passage {
                    question: "How long is the warranty?".into(),
                    excerpts: vec![
                        Excerpt {
                            title: "Warranty".into(),
                            number: 1,
                            text: agentbase_core::quote::best_passage(
                                "How long is the warranty?",
                                WARRANTY,
                            ),
                        },
                        Excerpt {
                            title: "Blades".into(),
                            number: 3,
                            text: "Blades for the warranty period cost 12 euros.".into(),
                        },
                    ],
                },
            )
            .collect()
            .await;
            let text: String = out
                .iter()
                .filter_map(|e| match e {
                    Ok(ModelEvent::TextDelta(d)) => Some(d.as_str()),
                    _ => None,
                })
                .collect();
            assert!(matches!(out.last(), Some(Ok(ModelEvent::Finish { .. }))));
            text
        };
        let wrong = run("It is one-year, three-month.").await;
        assert!(wrong.starts_with("It is one-year, three-month."));
        assert!(
            wrong.contains("From \u{201c}Warranty\u{201d} [1]"),
            "{wrong}"
        );
        assert!(wrong.contains("17 months"), "{wrong}");
        assert!(
            wrong.ends_with(
                "\n\nFrom \u{201c}Blades\u{201d} [3]: \u{201c}Blades for the warranty period cost 12 euros.\u{201d}"
            ),
            "{wrong}"
        );
        // An answer that uses the best excerpt gets no quote, even of the second.
        let right = "Parts and labour are covered for 17 months from the date of purchase.";
        assert_eq!(run(right).await, right);
        // One that uses only the second gets the first quoted, not the second.
        let half = "Blades cost 12 euros for the period.";
        let got = run(half).await;
        assert!(got.contains("17 months"), "{got}");
        assert!(!got.contains("[3]"), "{got}");
    }
}
