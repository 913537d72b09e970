//! Sources and training jobs on the wire.

use agentbase_api_types as api;
use agentbase_core::Cursor;
use agentbase_core::knowledge::{LinkType, Source, SourceContent, TrainingJob};
use agentbase_core::time_fmt::iso8601;

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
