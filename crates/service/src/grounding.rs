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
    let Some(best) = knowledge.first() else {
        return if request.tools.is_empty() {
            dont_know()
        } else {
            model.stream(request)
        };
    };
    let question = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| question_of(&m.content).to_owned())
        .unwrap_or_default();
    let passage = Passage {
        question,
        title: best.title.clone(),
        number: 1,
        text: best.text.clone(),
    };
    with_quote(model.stream(request), passage)
}

/// What the agent says when the knowledge has nothing relevant and quoting is on.
pub const DONT_KNOW: &str = "I don't know: I could not find this in my knowledge base.";

/// Longest quote, in characters (a few sentences).
const QUOTE_CHARS: usize = 400;

/// Words that carry no meaning of their own in a question or a passage.
const STOP: &[&str] = &[
    "the", "and", "for", "are", "with", "that", "this", "from", "you", "can", "which", "have",
    "was", "will", "when", "what", "how", "does", "did", "why", "where", "who", "your", "its",
    "into", "than", "then", "there", "these", "those", "not", "but", "all", "any", "use", "used",
    "using", "one", "also", "has", "had", "may", "should", "would", "could", "about",
];

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

/// Crude stem: the first 5 characters of longer words, so "defaults" meets
/// "default" and "buffers" meets "buffer".
fn stem(w: &str) -> String {
    if w.chars().count() > 5 {
        w.chars().take(5).collect()
    } else {
        w.to_owned()
    }
}

/// Sentences (and list items, lines of code) of a Markdown chunk.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut start = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let end_of_sentence = matches!(b, b'.' | b'!' | b'?')
                && bytes.get(i + 1).is_some_and(|n| *n == b' ')
                && bytes
                    .get(i + 2)
                    .is_some_and(|n| n.is_ascii_uppercase() || *n == b'(' || *n == b'`');
            if end_of_sentence {
                out.push(line[start..=i].trim());
                start = i + 1;
            }
        }
        out.push(line[start..].trim());
    }
    out.retain(|s| s.chars().any(char::is_alphanumeric));
    out
}

/// The run of consecutive sentences of `text` (at most [`QUOTE_CHARS`]) that holds
/// the most distinct question words; ties go to the earlier, shorter run.
pub fn best_passage(question: &str, text: &str) -> String {
    let q: Vec<String> = {
        let mut v: Vec<String> = words(question).iter().map(|w| stem(w)).collect();
        v.sort();
        v.dedup();
        v
    };
    let sents = sentences(text);
    let mut best: Option<(usize, usize, usize)> = None; // (matched, start, end)
    for start in 0..sents.len() {
        let mut len = 0;
        for end in start..sents.len().min(start + 4) {
            len += sents[end].len() + 1;
            if len > QUOTE_CHARS && end > start {
                break;
            }
            let window: std::collections::HashSet<String> = sents[start..=end]
                .iter()
                .flat_map(|s| words(s))
                .map(|w| stem(&w))
                .collect();
            let matched = q.iter().filter(|t| window.contains(*t)).count();
            if best.is_none_or(|b| matched > b.0) {
                best = Some((matched, start, end));
            }
        }
    }
    let Some((_, start, end)) = best else {
        return text.chars().take(QUOTE_CHARS).collect();
    };
    let quote = sents[start..=end].join(" ");
    if quote.len() > QUOTE_CHARS * 2 {
        let cut: String = quote.chars().take(QUOTE_CHARS).collect();
        return format!("{cut}…");
    }
    quote
}

/// Whether `answer` already carries `passage`'s information: at least half of the
/// passage's words that the question does not contain (what it adds) appear in
/// the answer.
pub fn uses(answer: &str, passage: &str, question: &str) -> bool {
    let asked: std::collections::HashSet<String> =
        words(question).iter().map(|w| stem(w)).collect();
    let said: std::collections::HashSet<String> = words(answer).iter().map(|w| stem(w)).collect();
    let mut new: Vec<String> = words(passage)
        .iter()
        .map(|w| stem(w))
        .filter(|w| !asked.contains(w))
        .collect();
    new.sort();
    new.dedup();
    if new.is_empty() {
        return true;
    }
    let found = new.iter().filter(|w| said.contains(*w)).count();
    found * 2 >= new.len()
}

/// The quote appended to an answer that does not use the best passage.
pub fn quote(title: &str, number: usize, passage: &str) -> String {
    format!("\n\nFrom \u{201c}{title}\u{201d} [{number}]: \u{201c}{passage}\u{201d}")
}

/// The best passage an answer is checked against: the top knowledge entry.
pub struct Passage {
    pub question: String,
    pub title: String,
    /// 1-based citation number in the knowledge given to the model.
    pub number: usize,
    pub text: String,
}

/// Wraps `stream` so that, at its end, a quote of `passage` is added when the
/// streamed answer does not use it. Tool calls pass through untouched (a turn that
/// ends in tool calls is not an answer yet).
pub fn with_quote(stream: ModelStream, passage: Passage) -> ModelStream {
    let excerpt = best_passage(&passage.question, &passage.text);
    let state = (stream, String::new(), false, false, passage, excerpt);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut stream, mut answer, mut tools, done, passage, excerpt)| async move {
            if done {
                return None;
            }
            match stream.next().await {
                Some(Ok(ModelEvent::TextDelta(d))) => {
                    answer.push_str(&d);
                    Some((
                        Ok(ModelEvent::TextDelta(d)),
                        (stream, answer, tools, false, passage, excerpt),
                    ))
                }
                Some(Ok(finish @ ModelEvent::Finish { .. })) => {
                    let ModelEvent::Finish { reason, usage } = finish else {
                        unreachable!()
                    };
                    if tools
                        || reason == FinishReason::ToolCalls
                        || uses(&answer, &excerpt, &passage.question)
                    {
                        return Some((
                            Ok(ModelEvent::Finish { reason, usage }),
                            (stream, answer, tools, true, passage, excerpt),
                        ));
                    }
                    // The quote goes out as one more text delta, then the finish.
                    let q = quote(&passage.title, passage.number, &excerpt);
                    let rest: ModelStream =
                        Box::pin(futures_util::stream::iter([Ok(ModelEvent::Finish {
                            reason,
                            usage,
                        })]));
                    Some((
                        Ok(ModelEvent::TextDelta(q)),
                        (rest, answer, true, false, passage, excerpt),
                    ))
                }
                Some(Ok(other)) => {
                    if matches!(other, ModelEvent::ToolCallStart { .. }) {
                        tools = true;
                    }
                    Some((Ok(other), (stream, answer, tools, false, passage, excerpt)))
                }
                Some(Err(e)) => Some((Err(e), (stream, answer, tools, true, passage, excerpt))),
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

    #[test]
    fn the_best_passage_is_the_sentences_that_answer_the_question() {
        let p = best_passage("How long is the warranty?", WARRANTY);
        assert!(p.contains("17 months"), "{p}");
        assert!(!p.contains("Contact support"), "{p}");
        let p = best_passage("How much do replacement blades cost?", WARRANTY);
        assert!(p.contains("12 euros"), "{p}");
    }

    #[test]
    fn an_answer_that_repeats_the_facts_uses_the_passage() {
        let q = "How long is the warranty?";
        let p = best_passage(q, WARRANTY);
        assert!(uses(
            "The warranty covers parts and labour for 17 months from the date of purchase.",
            &p,
            q
        ));
        assert!(!uses("The warranty is one-year, three-month.", &p, q));
    }

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
                    title: "Warranty".into(),
                    number: 1,
                    text: WARRANTY.into(),
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
        let right = "Parts and labour are covered for 17 months from the date of purchase.";
        assert_eq!(run(right).await, right);
    }
}
