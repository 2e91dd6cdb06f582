"""User-agent strings of the clients people and servers call the clouds with."""

from __future__ import annotations

import re

from cloudsoc.demo.company import Person

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_CLI_SERVICE = {"monitoring": "cloudwatch", "elasticloadbalancing": "elbv2", "s3": "s3api"}


class Clients:
    """The user agents of SDKs, CLIs, Terraform and consoles, as the trails record them."""

    ALIYUN_PYTHON = "AlibabaCloud (Linux; amd64) Python/3.11.4 Core/2.13.10 python-requests/2.31.0"
    ALIYUN_JAVA = "aliyun-sdk-java/4.6.4 (Linux 5.10.134-16.al8.x86_64; amd64) Java/1.8.0_392"
    ALIYUN_GO = "AlibabaCloud (linux; amd64) Go/go1.22.4 Core/1.62.771 TeaDSL/1"
    ALIYUN_OSSUTIL = "aliyun-sdk-go/v3.0.2 (Linux/5.10.134-16.al8.x86_64/amd64;go1.22.4)/ossutil-v1.7.19"
    ALIYUN_TERRAFORM = (
        "Terraform/1.9.8 (+https://www.terraform.io) Terraform-Plugin-SDK/2.10.1 terraform-provider-alicloud/1.235.0"
    )
    ALIYUN_CONSOLE = "AliyunConsole"
    ALIYUN_ATTACKER = "AlibabaCloud (linux; amd64) Go/go1.21.5 Core/v1.62.1 TeaDSL/1 aliyun-cli/3.0.204"

    AWS_BOTO3 = (
        "Boto3/1.34.131 md/Botocore#1.34.131 ua/2.0 os/linux#5.15.0-1064-aws md/arch#x86_64 lang/python#3.11.6 "
        "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.131"
    )
    AWS_GO_EXPORTER = "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/{api}#1.40.3"
    AWS_TERRAFORM = (
        "APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) terraform-provider-aws/5.74.0 "
        "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.3 os/macos lang/go#1.23.2 "
        "md/GOOS#darwin md/GOARCH#arm64 api/{api}#1.187.0"
    )
    AWS_CLI = "aws-cli/2.15.30 Python/3.11.6 {platform} prompt/off command/{command}"
    AWS_CLI_SERVER = (
        "aws-cli/2.15.30 Python/3.11.6 Linux/5.15.0-1064-aws exe/x86_64.ubuntu.22 prompt/off command/{command}"
    )
    AWS_ATTACKER = "aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-amd64 exe/x86_64.kali.2024 prompt/off command/{command}"

    @staticmethod
    def aws_command(source: str, name: str) -> str:
        """The aws-cli v2 command that makes the call ``name`` of ``source``: ``ec2.describe-instances``."""
        if source == "s3" and name == "ListBuckets":
            return "s3.ls"
        action = _CAMEL.sub("-", name.removesuffix("20150331v2").removesuffix("20150331")).lower()
        return f"{_CLI_SERVICE.get(source, source)}.{action}"

    @staticmethod
    def aliyun_cli(p: Person) -> str:
        return f"AlibabaCloud ({p.workstation[1]}) Go/go1.22.4 Core/1.62.771 TeaDSL/1 aliyun-cli/3.0.225"

    @staticmethod
    def api_name(source: str) -> str:
        """The service id in aws-sdk-go-v2 user agents (``api/ec2``)."""
        return {"monitoring": "cloudwatch", "elasticloadbalancing": "elasticloadbalancingv2"}.get(source, source)
