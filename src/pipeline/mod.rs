//! The article pipeline: ingest (canonical URL, dedupe, merge), classify, rank, summarize, compile.
