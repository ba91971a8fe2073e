"""Tenancy: who may move what. ReleasePolicy judgement (`policy`), URL globs (`urls`), the outbound
HTTP guard (`guard`) and the Secret annotation check (`secrets`)."""
