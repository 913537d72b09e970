//! Prints the extraction of one saved page: `cargo run --example extract_file -- FILE [URL] [none]`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: extract_file FILE [URL] [none|ifpossible]");
        std::process::exit(2);
    };
    let html = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        }
    };
    let url = args
        .get(2)
        .map(String::as_str)
        .unwrap_or("https://example.com/");
    let mut options = agentbase_crawler::ExtractOptions::default();
    match args.get(3).map(String::as_str) {
        Some("none") => options.html_transformer = agentbase_crawler::HtmlTransformer::None,
        Some("ifpossible") => {
            options.html_transformer = agentbase_crawler::HtmlTransformer::ReadableTextIfPossible
        }
        _ => {}
    }
    let out = agentbase_crawler::extract(&html, url, &options);
    println!("{}", out.text);
}
