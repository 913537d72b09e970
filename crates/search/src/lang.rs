//! Which language a document is written in, so the lexical index can stem it with
//! the right Snowball stemmer. Detection counts each candidate language's most
//! frequent function words ("the", "und", "les", ...): in running text they make up
//! a large share of the tokens and barely overlap between languages, which is enough
//! for documents and needs no model. Short or ambiguous text falls back to English,
//! the stemmer the index always used.

use tantivy::tokenizer::Language;

/// A language the lexical index stems; `code` names its fields and analyzer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    English,
    German,
    French,
    Spanish,
    Italian,
    Portuguese,
    Dutch,
    Swedish,
    Danish,
    Norwegian,
    Finnish,
    Russian,
}

impl Lang {
    /// Every detectable language, English first (the fallback).
    pub const ALL: [Lang; 12] = [
        Lang::English,
        Lang::German,
        Lang::French,
        Lang::Spanish,
        Lang::Italian,
        Lang::Portuguese,
        Lang::Dutch,
        Lang::Swedish,
        Lang::Danish,
        Lang::Norwegian,
        Lang::Finnish,
        Lang::Russian,
    ];

    /// ISO 639-1 code, used in field and analyzer names.
    pub fn code(self) -> &'static str {
        match self {
            Lang::English => "en",
            Lang::German => "de",
            Lang::French => "fr",
            Lang::Spanish => "es",
            Lang::Italian => "it",
            Lang::Portuguese => "pt",
            Lang::Dutch => "nl",
            Lang::Swedish => "sv",
            Lang::Danish => "da",
            Lang::Norwegian => "no",
            Lang::Finnish => "fi",
            Lang::Russian => "ru",
        }
    }

    /// The language with this code.
    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    pub(crate) fn stemmer(self) -> Language {
        match self {
            Lang::English => Language::English,
            Lang::German => Language::German,
            Lang::French => Language::French,
            Lang::Spanish => Language::Spanish,
            Lang::Italian => Language::Italian,
            Lang::Portuguese => Language::Portuguese,
            Lang::Dutch => Language::Dutch,
            Lang::Swedish => Language::Swedish,
            Lang::Danish => Language::Danish,
            Lang::Norwegian => Language::Norwegian,
            Lang::Finnish => Language::Finnish,
            Lang::Russian => Language::Russian,
        }
    }

    /// Function words dropped from queries: the detection list plus, for English,
    /// the question words a search box gets ("how do I ...", "what is ...").
    pub(crate) fn query_stopwords(&self) -> &'static [&'static str] {
        match self {
            Lang::English => ENGLISH_QUERY_STOPWORDS,
            other => other.stopwords(),
        }
    }

    fn stopwords(self) -> &'static [&'static str] {
        match self {
            Lang::English => &[
                "the", "and", "of", "to", "is", "in", "that", "it", "for", "with", "as", "are",
                "this", "be", "on", "by", "or", "an", "not", "from", "you", "can", "which", "have",
                "was", "if", "will", "when",
            ],
            Lang::German => &[
                "der", "die", "und", "das", "ist", "nicht", "zu", "den", "mit", "sich", "des",
                "auf", "ein", "eine", "dem", "auch", "es", "wird", "werden", "oder", "für", "von",
                "sie", "wenn", "kann", "einer", "sind", "bei",
            ],
            Lang::French => &[
                "le", "la", "les", "de", "des", "et", "est", "une", "un", "du", "pour", "que",
                "qui", "dans", "en", "pas", "sur", "au", "avec", "ce", "par", "sont", "vous",
                "peut", "aux", "il", "se", "ou",
            ],
            Lang::Spanish => &[
                "el", "la", "los", "las", "de", "que", "y", "en", "es", "por", "para", "una", "un",
                "con", "del", "se", "no", "al", "lo", "como", "más", "pero", "su", "puede", "este",
                "esta", "son", "o",
            ],
            Lang::Italian => &[
                "il", "di", "che", "la", "le", "per", "non", "una", "un", "è", "del", "della",
                "gli", "con", "sono", "da", "si", "nel", "dei", "alla", "anche", "come", "più",
                "questo", "essere", "può", "ed", "lo",
            ],
            Lang::Portuguese => &[
                "de", "que", "não", "uma", "um", "para", "com", "os", "as", "do", "da", "em",
                "por", "mais", "se", "ao", "dos", "das", "como", "na", "no", "é", "ser", "pode",
                "também", "são", "ou", "seu",
            ],
            Lang::Dutch => &[
                "de", "het", "een", "en", "van", "is", "niet", "dat", "die", "op", "te", "zijn",
                "voor", "met", "worden", "wordt", "ook", "aan", "kan", "als", "bij", "naar", "dit",
                "deze", "of", "u", "je", "er",
            ],
            Lang::Swedish => &[
                "och", "att", "det", "som", "en", "är", "på", "för", "av", "med", "den", "till",
                "inte", "har", "ett", "om", "kan", "de", "eller", "vid", "från", "ska", "när",
                "detta", "också", "sig", "man", "så",
            ],
            Lang::Danish => &[
                "og", "at", "det", "er", "en", "til", "af", "for", "med", "den", "på", "ikke",
                "som", "de", "har", "et", "kan", "fra", "eller", "skal", "vil", "når", "også",
                "denne", "sig", "dig", "jeg", "være",
            ],
            Lang::Norwegian => &[
                "og", "er", "det", "som", "på", "til", "av", "for", "med", "ikke", "en", "et",
                "har", "kan", "den", "de", "om", "fra", "eller", "skal", "vil", "når", "også",
                "dette", "seg", "deg", "jeg", "være",
            ],
            Lang::Finnish => &[
                "ja", "on", "ei", "että", "se", "kun", "tai", "mutta", "ovat", "myös", "joka",
                "voi", "sen", "tämä", "kanssa", "jos", "niin", "ole", "mitä", "hän", "oli",
                "jotka", "sekä", "kuin", "vain", "nyt", "jo", "sitä",
            ],
            Lang::Russian => &[
                "и",
                "в",
                "не",
                "на",
                "что",
                "с",
                "по",
                "как",
                "это",
                "для",
                "из",
                "к",
                "то",
                "а",
                "от",
                "или",
                "при",
                "так",
                "же",
                "его",
                "может",
                "быть",
                "если",
                "только",
                "у",
                "все",
                "они",
                "но",
            ],
        }
    }
}

const ENGLISH_QUERY_STOPWORDS: &[&str] = &[
    "the", "and", "of", "to", "is", "in", "that", "it", "for", "with", "as", "are", "this", "be",
    "on", "by", "or", "an", "from", "you", "can", "which", "have", "was", "if", "will", "when",
    "a", "how", "do", "does", "i", "what", "why", "where", "who", "my", "me", "there", "should",
    "would", "could", "into", "its", "so", "than", "then", "these", "those", "we",
];

/// Below this many function-word hits the text is too short to tell.
const MIN_HITS: usize = 3;

/// The language `text` is most likely written in (English when it cannot tell).
/// Looks at the first 4,000 words, which is plenty for a web page.
pub fn detect(text: &str) -> Lang {
    let mut counts = [0usize; Lang::ALL.len()];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(4000)
    {
        let lower = word.to_lowercase();
        for (i, lang) in Lang::ALL.iter().enumerate() {
            if lang.stopwords().contains(&lower.as_str()) {
                counts[i] += 1;
            }
        }
    }
    let (best, &hits) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i)))
        .expect("non-empty");
    if hits < MIN_HITS {
        return Lang::English;
    }
    Lang::ALL[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_language_of_ordinary_prose() {
        let cases = [
            (
                "The borrow checker makes sure that references are always valid, and it \
                 rejects code that would use a value after it was moved.",
                Lang::English,
            ),
            (
                "Die Garantie gilt für zwei Jahre ab dem Kaufdatum. Wenn das Gerät nicht \
                 funktioniert, wird es kostenlos repariert oder ersetzt.",
                Lang::German,
            ),
            (
                "La garantie est valable deux ans à compter de la date d'achat. Si \
                 l'appareil ne fonctionne pas, il est réparé ou remplacé sans frais pour vous.",
                Lang::French,
            ),
            (
                "La garantía es válida por dos años desde la fecha de compra. Si el aparato \
                 no funciona, se repara o se sustituye sin coste para el cliente.",
                Lang::Spanish,
            ),
            (
                "Гарантия действует два года с даты покупки. Если устройство не работает, \
                 его бесплатно отремонтируют или заменят.",
                Lang::Russian,
            ),
            (
                "De garantie is twee jaar geldig vanaf de aankoopdatum. Als het apparaat \
                 niet werkt, wordt het kosteloos gerepareerd of vervangen.",
                Lang::Dutch,
            ),
        ];
        for (text, lang) in cases {
            assert_eq!(detect(text), lang, "{text}");
        }
    }

    #[test]
    fn short_or_symbolic_text_falls_back_to_english() {
        assert_eq!(detect(""), Lang::English);
        assert_eq!(detect("Vec<T> HashMap<K, V>"), Lang::English);
        assert_eq!(
            detect("fn main() { println!(\"{}\", 1 + 2); }"),
            Lang::English
        );
    }

    #[test]
    fn codes_round_trip() {
        for l in Lang::ALL {
            assert_eq!(Lang::from_code(l.code()), Some(l));
        }
        assert_eq!(Lang::from_code("xx"), None);
    }
}
