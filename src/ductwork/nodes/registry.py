"""Every node type ductwork knows: one line each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ductwork.nodes.ai_processor import AiProcessorNode
from ductwork.nodes.base import NodeType
from ductwork.nodes.code import CodeNode
from ductwork.nodes.condition import ConditionNode
from ductwork.nodes.data_source import DataSourceNode
from ductwork.nodes.delay import DelayNode
from ductwork.nodes.email import EmailNode
from ductwork.nodes.end import EndNode
from ductwork.nodes.filter import FilterNode
from ductwork.nodes.loop import LoopNode
from ductwork.nodes.merge import MergeNode
from ductwork.nodes.start import StartNode
from ductwork.nodes.subworkflow import SubWorkflowNode
from ductwork.nodes.transformer import TransformerNode
from ductwork.nodes.wait import WaitNode
from ductwork.nodes.webhook import WebhookNode

NODE_TYPES: tuple[NodeType[Any], ...] = (
    StartNode(),
    AiProcessorNode(),
    EmailNode(),
    DataSourceNode(),
    WebhookNode(),
    EndNode(),
    ConditionNode(),
    FilterNode(),
    TransformerNode(),
    DelayNode(),
    WaitNode(),
    CodeNode(),
    SubWorkflowNode(),
    MergeNode(),
    LoopNode(),
)

REGISTRY: Mapping[str, NodeType[Any]] = {node.type_name: node for node in NODE_TYPES}
