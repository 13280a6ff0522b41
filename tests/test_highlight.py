"""search/highlight.py: which query keywords a paper matches and the title ranges the page marks."""

from recall.milvus.search import Hit
from search.highlight import annotate, highlight_spans, matched_keywords, query_keywords


def test_keywords_match_in_the_title_or_the_papers_own_keywords():
    title = "基于卷积神经网络CNN的图像识别研究"
    assert query_keywords("CNN  图像识别 cnn 迁移学习") == ["CNN", "图像识别", "迁移学习"]
    assert matched_keywords("cnn 图像识别 迁移学习", title) == ["cnn", "图像识别"]
    assert matched_keywords("ＣＮＮ", title) == ["ＣＮＮ"]  # full-width letters fold to ASCII
    assert matched_keywords("迁移学习 数据稀疏", title, keywords=("数据稀疏",)) == ["数据稀疏"]
    # a typed phrase that is not in the title whole matches by its words
    assert set(matched_keywords("卷积神经网络的图像识别方法", title)) >= {"图像识别"}
    assert matched_keywords("量子 计算", title) == []


def test_spans_cover_every_occurrence_merged_and_sorted():
    title = "语言与文化：语言文化差异的比较"
    spans = highlight_spans(["语言", "文化", "差异"], title)
    assert spans == [[0, 2], [3, 5], [6, 12]]
    assert "".join(title[a:b] for a, b in spans) == "语言文化语言文化差异"
    assert highlight_spans(["CNN"], "cnn 与 CNN") == [[0, 3], [6, 9]]
    assert highlight_spans([], title) == [] and highlight_spans([""], title) == []


def test_annotate_sets_matched_on_each_hit():
    hits = [Hit(1, 2.0, "中西方语言与文化的差异"), Hit(2, 1.0, "水稻产量预测", {"keywords": ["文化"]})]
    annotate("语言 文化 差异", hits)
    assert hits[0].matched == ["语言", "文化", "差异"] and hits[1].matched == ["文化"]
    assert hits[1].to_dict() == {
        "id": 2,
        "score": 1.0,
        "text": "水稻产量预测",
        "fields": {"keywords": ["文化"]},
        "matched": ["文化"],
    }
