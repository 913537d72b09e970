"""Scrapy peer for the crawl benchmark: follows links under the start URLs' directories
(the same scope rule as agentbase's default), extracts the page text, and writes JSONL.

    python scrapy_spider.py OUT.jsonl MAX_PAGES CONCURRENCY START_URL...
"""
import json
import re
import sys
import time
from urllib.parse import urldefrag

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor


def scope_prefix(url):
    head, _, last = url.rpartition("/")
    return head + "/" if "." in last or last == "" else url.rstrip("/") + "/"


class DocsSpider(scrapy.Spider):
    name = "docs"

    def __init__(self, starts, **kw):
        super().__init__(**kw)
        self.start_urls = starts
        prefixes = [scope_prefix(u) for u in starts]
        self.links = LinkExtractor(allow=[re.escape(p) for p in prefixes], deny_extensions=[])
        self.first = None
        self.last = None

    def parse(self, response):
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        if not isinstance(response, scrapy.http.TextResponse):
            return
        text = " ".join(
            t.strip()
            for t in response.xpath(
                "//body//text()[not(ancestor::script or ancestor::style or ancestor::nav)]"
            ).getall()
            if t.strip()
        )
        yield {"url": response.url, "title": response.css("title::text").get(), "text": text}
        for link in self.links.extract_links(response):
            yield response.follow(urldefrag(link.url)[0], self.parse)


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    out, max_pages, concurrency, starts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    process = CrawlerProcess(
        settings={
            "CONCURRENT_REQUESTS": concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
            "CONCURRENT_REQUESTS_PER_IP": 0,
            "ROBOTSTXT_OBEY": False,
            "AUTOTHROTTLE_ENABLED": False,
            "DOWNLOAD_DELAY": 0,
            "RETRY_ENABLED": False,
            "COOKIES_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "CLOSESPIDER_PAGECOUNT": max_pages,
            "LOG_LEVEL": "WARNING",
            "FEEDS": {out: {"format": "jsonlines", "overwrite": True}},
            "USER_AGENT": "scrapy-bench",
        }
    )
    crawler = process.create_crawler(DocsSpider)
    started = time.monotonic()
    process.crawl(crawler, starts=starts)
    process.start()
    secs = time.monotonic() - started
    pages = crawler.stats.get_value("response_received_count", 0)
    items = crawler.stats.get_value("item_scraped_count", 0)
    spider = crawler.spider
    # Steady state: first to last response, which leaves out Scrapy's start-up and
    # shutdown (the peer's most favourable reading).
    steady = (spider.last - spider.first) if spider and spider.last and spider.first else 0
    print(json.dumps({"crawler": "scrapy", "pages": pages, "items": items, "seconds": secs,
                      "pages_per_sec": pages / secs,
                      "steady_pages_per_sec": (pages - 1) / steady if steady > 0 else None}))


if __name__ == "__main__":
    main()
