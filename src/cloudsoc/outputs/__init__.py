"""Alert outputs: webhook, dingtalk, wecom, feishu, slack, email, script; the outbox and its dispatcher."""
