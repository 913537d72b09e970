//! Sources (the knowledge base), training jobs and retrieval testing. Source
//! management returns bare objects, as the contract does.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Pagination;

/// Child link counts of a crawl or sitemap source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinkChildren {
    pub included: i64,
    pub excluded: i64,
    pub failed: i64,
}

/// Link-specific metadata; `null` for other kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkMetadata {
    /// `individual`, `crawl` or `sitemap`.
    #[serde(rename = "type")]
    pub link_type: String,
    pub exclude_paths: Vec<String>,
    pub include_only_paths: Vec<String>,
    pub slow_scraping: bool,
    /// `fetching`, `fetched` or `failed`.
    pub crawl_status: String,
    pub children: LinkChildren,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceListItem {
    pub id: String,
    /// `link`, `file`, `qna`, `notionPage` or `text`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    /// Bytes.
    pub size: i64,
    /// ISO 8601.
    pub created_at: String,
    /// `untrained`, `trained`, `updated`, `failed` (and `deleted` in a delete's answer).
    pub status: String,
    pub metadata: Option<LinkMetadata>,
    /// agentbase: why the last training failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListSourcesResponse {
    pub data: Vec<SourceListItem>,
    pub pagination: Pagination,
}

/// `POST /agents/{id}/sources`: text, Q&A or link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CreateSourceBody {
    #[serde(rename_all = "camelCase")]
    Text { name: String, content: String },
    #[serde(rename_all = "camelCase")]
    Qna {
        name: String,
        questions: Vec<String>,
        answer: String,
    },
    #[serde(rename_all = "camelCase")]
    Link {
        url: String,
        /// `individual`, `sitemap` or `crawl`.
        link_type: String,
        #[serde(default)]
        exclude_paths: Vec<String>,
        #[serde(default)]
        include_only_paths: Vec<String>,
        #[serde(default)]
        slow_scraping: bool,
    },
}

/// `PUT /agents/{id}/sources/{sourceId}`: the fields of the source's kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateSourceBody {
    pub name: Option<String>,
    pub content: Option<String>,
    pub questions: Option<Vec<String>>,
    pub answer: Option<String>,
    pub exclude_paths: Option<Vec<String>>,
    pub include_only_paths: Option<Vec<String>>,
    pub slow_scraping: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceTypeCount {
    pub count: i64,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourcesSummaryResponse {
    pub links: SourceTypeCount,
    pub files: SourceTypeCount,
    pub qnas: SourceTypeCount,
    pub notion_pages: SourceTypeCount,
    pub texts: SourceTypeCount,
    pub zendesk_tickets: SourceTypeCount,
    pub salesforce_cases: SourceTypeCount,
    pub should_retrain: bool,
}

/// The answer of endpoints the contract keeps as no-ops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeprecatedEndpointResponse {
    pub success: bool,
    pub deprecated: bool,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoRetrainBody {
    pub enabled: bool,
}

/// `{"data": {"id"}}`, the file upload's answer shape in the official CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileSourceCreated {
    pub data: SourceListItem,
}

/// agentbase extension: one training job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrainingJob {
    pub id: String,
    pub source_id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// `queued`, `fetching`, `embedding`, `switching` or `done`.
    pub stage: String,
    pub done: i64,
    pub total: i64,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrainingJobsResponse {
    pub data: Vec<TrainingJob>,
}

/// agentbase extension: `POST /agents/{id}/search` (retrieval testing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    pub query: String,
    /// 1–50, default 10.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Also return the hits grouped by page (`pages`), best page first.
    #[serde(
        default,
        rename = "groupByPage",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_by_page: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub rank: u32,
    pub chunk_id: String,
    pub source_id: String,
    /// The page URL (website sources) or null.
    pub url: Option<String>,
    /// The source name or page title.
    pub title: String,
    /// The heading path, outermost first, joined with " > ".
    pub heading: String,
    pub text: String,
    /// The chunk's fused hybrid score. Hits are ordered by page: each page's best
    /// chunk first (pages by their score), then further chunks of those pages.
    pub score: f32,
    /// Dense cosine similarity (0–1), comparable across queries.
    pub relevance: f32,
    /// BM25 score, when the chunk was a lexical candidate.
    pub bm25: Option<f32>,
}

/// The hits of one page (a website page, or a whole text/file/Q&A source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    pub rank: u32,
    pub source_id: String,
    pub url: Option<String>,
    pub title: String,
    /// The page's best chunk's score.
    pub score: f32,
    /// The page's best relevance (0–1).
    pub relevance: f32,
    /// The page's chunks among the hits, best first.
    pub hits: Vec<SearchHit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub data: Vec<SearchHit>,
    /// With `groupByPage`: the same hits grouped by page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<Vec<SearchPage>>,
}
