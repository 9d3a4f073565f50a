"""Fraud knowledge for citizens: articles and case stories, region notices, announced
police calls and the trend feed (``antifraud.report.v1.KnowledgeService``).

A bounded context of its own inside the report service: its own tables (``knowledge_*``),
domain, handlers and servicer. It reads the report context's cases and reports (for
stories and trends) and never writes them.
"""
