//! Sources and training jobs on the wire.

use agentbase_api_types as api;
use agentbase_core::Cursor;
use agentbase_core::knowledge::{LinkType, Source, SourceContent, TrainingJob};
use agentbase_core::time_fmt::iso8601;
use agentbase_service::knowledge::SourcesSummary;
use agentbase_service::{Page, Retrieved};

pub(crate) fn source_dto(s: Source) -> api::SourceListItem {
    let metadata = match &s.content {
        SourceContent::Link { options, .. } => Some(api::LinkMetadata {
            link_type: match options.link_type {
                LinkType::Individual => "individual",
                LinkType::Crawl => "crawl",
                LinkType::Sitemap => "sitemap",
            }
            .to_owned(),
            exclude_paths: options.exclude_paths.clone(),
            include_only_paths: options.include_only_paths.clone(),
            slow_scraping: options.slow_scraping,
            crawl_status: s.crawl_status.clone().unwrap_or_else(|| "fetching".into()),
            children: api::LinkChildren {
                included: s.pages,
                excluded: 0,
                failed: 0,
            },
        }),
        _ => None,
    };
    let name = match &s.content {
        SourceContent::Link { url, .. } => url.clone(),
        _ => s.name.clone(),
    };
    api::SourceListItem {
        id: s.id,
        kind: s.content.kind().as_str().to_owned(),
        name: Some(name),
        size: s.size,
        created_at: iso8601(s.created_at),
        status: s.status.as_str().to_owned(),
        metadata,
        error: s.error,
    }
}

pub(crate) fn job_dto(j: TrainingJob) -> api::TrainingJob {
    api::TrainingJob {
        id: j.id,
        source_id: j.source_id,
        status: j.status.as_str().to_owned(),
        stage: j.stage,
        done: j.done,
        total: j.total,
        error: j.error,
        created_at: iso8601(j.created_at),
        updated_at: iso8601(j.updated_at),
    }
}

/// A source list's cursor: newest first, by creation.
pub(crate) fn by_created(s: &Source) -> Cursor {
    Cursor {
        t: s.created_at,
        id: s.id.clone(),
    }
}

pub(crate) fn source_list_dto(page: Page<Source>) -> api::ListSourcesResponse {
    let pagination = crate::dto::conversations::pagination(&page, by_created);
    api::ListSourcesResponse {
        data: page.items.into_iter().map(source_dto).collect(),
        pagination,
    }
}

/// Counts and sizes by kind; the contract's kinds agentbase has not are zero.
pub(crate) fn summary_dto(s: SourcesSummary) -> api::SourcesSummaryResponse {
    let count = |k: &str| {
        let (count, size) = s.counts.get(k).copied().unwrap_or((0, 0));
        api::SourceTypeCount { count, size }
    };
    let none = || api::SourceTypeCount { count: 0, size: 0 };
    api::SourcesSummaryResponse {
        links: count("link"),
        files: count("file"),
        qnas: count("qna"),
        notion_pages: none(),
        texts: count("text"),
        zendesk_tickets: none(),
        salesforce_cases: none(),
        should_retrain: s.should_retrain,
    }
}

/// The hits, ranked, and when `group_by_page` the same hits grouped by page.
pub(crate) fn search_dto(hits: &[Retrieved], group_by_page: bool) -> api::SearchResponse {
    let data: Vec<api::SearchHit> = (hits.iter().enumerate())
        .map(|(i, h)| search_hit(i, h))
        .collect();
    let pages = group_by_page.then(|| search_pages(hits, &data));
    api::SearchResponse { data, pages }
}

/// The hits grouped by page, best page first, each with the hits it holds.
fn search_pages(hits: &[Retrieved], data: &[api::SearchHit]) -> Vec<api::SearchPage> {
    let page = |(rank, page): (usize, Vec<usize>)| {
        let best = &hits[page[0]];
        api::SearchPage {
            rank: rank as u32 + 1,
            source_id: best.source_id.clone(),
            url: best.url.clone(),
            title: best.title.clone(),
            score: best.score,
            relevance: page.iter().map(|&i| hits[i].relevance).fold(0.0, f32::max),
            hits: page.iter().map(|&i| data[i].clone()).collect(),
        }
    };
    (agentbase_service::group_by_page(hits)
        .into_iter()
        .enumerate())
    .map(page)
    .collect()
}

fn search_hit(i: usize, h: &Retrieved) -> api::SearchHit {
    api::SearchHit {
        rank: i as u32 + 1,
        chunk_id: h.chunk_id.clone(),
        source_id: h.source_id.clone(),
        url: h.url.clone(),
        title: h.title.clone(),
        heading: h.heading.clone(),
        text: h.text.clone(),
        score: h.score,
        relevance: h.relevance,
        bm25: h.bm25,
    }
}
