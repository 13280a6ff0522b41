"""Generates data/sample/, the small bundled dataset, from hand-written Chinese building blocks.

    python data/make_sample.py                       # rewrites data/sample/ (committed outputs)
    python data/make_sample.py --output_dir /tmp/s   # anywhere else

Nothing here comes from CSL or any other dataset: 12 research fields, each with hand-written methods,
tasks, objects, phenomena and "extra" terms (data, factors, concepts), are combined by title templates
("基于{method}的{task}研究", "{object}中{phenomenon}的{analysis}", ...) and abstract sentence templates
(3-5 sentences joined by 。). A paper's 3-5 keywords are drawn from the terms of its title AND of its
abstract, with at least one keyword that is not in the title, so a query (keywords joined by a space)
relates to its title the way CSL's do: mostly, but not only, by shared words.

With a fixed seed the output is byte-for-byte the same on every run: 500 papers (unique titles),
300 of them labelled (query = keywords, doc = title), split 240 train / 60 dev; the rest of the
layout (corpus, unsupervised texts, BM25 negatives, pretraining documents) is written by
write_layout (data/layout.py) exactly as data/prepare_csl.py does for CSL.
"""

import argparse
import os
import random

from layout import format_counts, write_layout

from ns_common.records import Record

# One entry per field: (display name, methods, tasks, objects, phenomena, extras). Latin terms
# (CNN, LSTM, BERT, GPS, DNA, PM2.5, ...) appear as they do in Chinese titles.
FIELDS = {
    "计算机": (
        "计算机科学",
        ["卷积神经网络", "CNN", "LSTM", "BERT", "注意力机制", "图神经网络", "迁移学习"],
        ["图像识别", "文本分类", "网络入侵检测", "个性化推荐", "命名实体识别", "目标检测"],
        ["社交网络", "物联网设备", "电商平台", "云计算环境"],
        ["数据稀疏", "类别不平衡", "隐私泄露", "负载不均衡"],
        ["公开数据集", "特征融合", "识别准确率"],
    ),
    "医学": (
        "临床医学",
        ["荟萃分析", "随机对照试验", "回顾性分析", "免疫组化", "实时荧光定量PCR", "多因素Logistic回归", "中药复方"],
        ["早期诊断", "预后评估", "临床疗效观察", "危险因素筛查", "术后护理", "基因表达检测"],
        ["2型糖尿病患者", "老年高血压患者", "乳腺癌组织", "冠心病患者"],
        ["胰岛素抵抗", "炎症反应", "血管内皮损伤", "术后感染"],
        ["DNA甲基化", "CT影像", "临床资料"],
    ),
    "农学": (
        "农学",
        ["田间试验", "盆栽试验", "分子标记", "GPS定位", "遥感监测", "主成分分析", "灰色关联分析"],
        ["产量预测", "品种选育", "病虫害防治", "土壤养分评价", "节水灌溉", "种质资源鉴定"],
        ["水稻", "冬小麦", "玉米", "设施番茄"],
        ["干旱胁迫", "盐碱胁迫", "氮素积累", "倒伏"],
        ["施肥量", "光合特性", "DNA条形码"],
    ),
    "材料": (
        "材料科学",
        ["溶胶凝胶法", "水热合成", "第一性原理计算", "XRD表征", "扫描电镜", "热处理工艺", "有限元模拟"],
        ["制备工艺优化", "电化学性能测试", "力学性能分析", "耐腐蚀性能评价", "微观组织调控", "介电性能测试"],
        ["铝合金", "石墨烯复合材料", "钛酸钡陶瓷", "锂离子电池正极材料"],
        ["晶粒细化", "界面结合", "相变行为", "应力腐蚀开裂"],
        ["纳米颗粒", "烧结温度", "掺杂浓度"],
    ),
    "教育": (
        "教育学",
        ["问卷调查", "行动研究", "混合式教学", "翻转课堂", "案例教学", "结构方程模型", "课堂观察"],
        ["教学质量评价", "课程改革", "教师专业发展", "学业成绩提升", "创新创业教育", "在线学习评估"],
        ["高职院校", "中小学", "地方本科高校", "乡村学校"],
        ["学习倦怠", "师资流失", "教育公平", "学习动机不足"],
        ["核心素养", "慕课", "学生满意度"],
    ),
    "经济": (
        "经济学",
        ["面板数据模型", "双重差分法", "空间计量模型", "向量自回归模型", "数据包络分析", "门槛回归", "主成分分析"],
        ["经济增长测度", "产业结构升级", "金融风险预警", "区域协调发展评价", "绿色全要素生产率测算", "房价波动预测"],
        ["中小企业", "上市公司", "商业银行", "农村家庭"],
        ["融资约束", "收入差距", "债务风险", "产能过剩"],
        ["数字金融", "货币政策", "技术创新"],
    ),
    "语言学": (
        "语言学",
        ["语料库方法", "认知语言学", "对比分析", "话语分析", "系统功能语法", "实验语音学", "构式语法"],
        ["二语习得", "汉英翻译", "方言词汇调查", "语篇衔接分析", "对外汉语教学", "词汇语义演变"],
        ["现代汉语", "网络语言", "古代汉语", "少数民族语言"],
        ["语法化", "隐喻", "语码转换", "声调变异"],
        ["中介语", "母语负迁移", "语用功能"],
    ),
    "环境": (
        "环境科学",
        ["层次分析法", "地理信息系统", "生命周期评价", "正定矩阵因子分解", "数值模拟", "遥感反演", "主成分分析"],
        ["水质评价", "大气污染溯源", "生态风险评价", "污水处理", "土壤修复", "碳排放核算"],
        ["长江流域", "城市湖泊", "工业园区", "农田土壤"],
        ["重金属污染", "PM2.5污染", "富营养化", "微塑料累积"],
        ["臭氧", "污染物浓度", "生态补偿"],
    ),
    "机械": (
        "机械工程",
        ["有限元分析", "模态分析", "多目标优化", "PLC控制", "遗传算法", "动力学仿真", "正交试验"],
        ["故障诊断", "结构优化设计", "振动控制", "寿命预测", "精度补偿", "路径规划"],
        ["齿轮箱", "滚动轴承", "数控机床", "工业机器人"],
        ["疲劳裂纹", "热变形", "磨损", "共振"],
        ["振动信号", "刚度", "传动效率"],
    ),
    "化学": (
        "化学",
        ["密度泛函理论", "分子动力学模拟", "红外光谱", "循环伏安法", "高效液相色谱", "固相萃取", "核磁共振"],
        ["催化剂制备", "合成路线设计", "痕量检测", "吸附性能评价", "反应机理分析", "结构表征"],
        ["金属有机框架", "离子液体", "稀土配合物", "聚合物"],
        ["光催化降解", "吸附", "荧光猝灭", "电子转移"],
        ["选择性", "产率", "检出限"],
    ),
    "法学": (
        "法学",
        ["比较法", "实证分析", "法教义学", "案例分析", "法经济学分析", "历史考察", "层次分析法"],
        ["刑事责任认定", "立法完善", "司法审查", "行政执法规范", "知识产权保护", "合同纠纷解决"],
        ["网络平台", "个人信息", "环境公益诉讼", "农村土地承包"],
        ["数据权属争议", "同案不同判", "权力滥用", "侵权责任"],
        ["民法典", "司法解释", "比例原则"],
    ),
    "心理学": (
        "心理学",
        ["事件相关电位", "眼动追踪", "元分析", "纵向追踪", "结构方程模型", "团体辅导", "认知行为疗法"],
        ["心理健康评估", "情绪调节训练", "注意偏向测量", "职业倦怠干预", "人格测评", "压力应对"],
        ["大学生", "留守儿童", "护士", "老年人"],
        ["焦虑", "抑郁", "网络成瘾", "睡眠障碍"],
        ["社会支持", "自我效能感", "心理弹性"],
    ),
}

ANALYSES = ["分析", "研究", "实证研究", "特征分析", "影响因素分析", "现状与对策"]
REGIONS = ["我国", "西北地区", "长江经济带", "粤港澳大湾区", "东北地区", "某市"]

# Title templates: the slots they fill are the terms a title "contains" (keyword candidates).
TITLE_TEMPLATES = [
    "基于{method}的{task}研究",
    "{method}在{task}中的应用",
    "一种基于{method}的{task}方法",
    "{object}中{phenomenon}的{analysis}",
    "{region}{object}{phenomenon}{analysis}",
    "基于{method}与{method2}的{task}",
    "面向{phenomenon}的{task}新方法",
    "基于{method}的{object}{phenomenon}{analysis}",
]

INTRO = [
    "{task}是{field}领域的重要研究方向",
    "近年来，{object}{phenomenon}问题日益受到关注",
    "{object}的{phenomenon}直接影响{task}的效果",
]
METHOD = [
    "本文提出一种基于{method}的{task}方法",
    "采用{method}对{object}的{phenomenon}进行了系统分析",
    "研究以{object}为对象，围绕{task}综合运用{method}开展分析",
]
DETAIL = [
    "在此基础上引入{method2}，并结合{extra}构建了分析框架",
    "同时利用{method2}考察了{extra}的作用",
]
RESULT = [
    "结果表明，所提方法在{extra}方面优于传统方法",
    "结果显示，{phenomenon}与{extra}之间存在显著相关性",
    "实验结果表明，{method}能够有效缓解{phenomenon}问题",
]
CONCLUSION = [
    "研究结果可为{task}提供理论依据和实践参考",
    "该研究对{object}的{task}具有一定的借鉴意义",
]


def make_paper(rng, field_key):
    field, methods, tasks, objects, phenomena, extras = FIELDS[field_key]
    method, method2 = rng.sample(methods, 2)
    slots = {
        "field": field,
        "method": method,
        "method2": method2,
        "task": rng.choice(tasks),
        "object": rng.choice(objects),
        "phenomenon": rng.choice(phenomena),
        "extra": rng.choice(extras),
        "analysis": rng.choice(ANALYSES),
        "region": rng.choice(REGIONS),
    }
    template = rng.choice(TITLE_TEMPLATES)
    title = template.format(**slots)

    sentences = [rng.choice(INTRO), rng.choice(METHOD), rng.choice(DETAIL), rng.choice(RESULT)]
    if rng.random() < 0.5:
        sentences.append(rng.choice(CONCLUSION))
    abstract = "。".join(s.format(**slots) for s in sentences) + "。"

    # keywords: 2-3 terms of the title, then 1-2 terms found only in the abstract
    term_slots = ("method", "method2", "task", "object", "phenomenon", "extra")
    in_title = [slots[s] for s in term_slots if "{" + s + "}" in template]
    in_abstract_only = [
        slots[s] for s in term_slots if "{" + s + "}" not in template and slots[s] in abstract and slots[s] not in title
    ]
    keywords = rng.sample(in_title, min(len(in_title), rng.choice([2, 3])))
    keywords += rng.sample(in_abstract_only, min(len(in_abstract_only), rng.choice([1, 2])))
    keywords = list(dict.fromkeys(keywords))
    rng.shuffle(keywords)
    return {"field": field_key, "title": title, "abstract": abstract, "keywords": keywords}


def make_papers(n_papers, seed):
    """n_papers with unique titles and unique keyword sets, fields taken in turn."""
    rng = random.Random(seed)
    fields = list(FIELDS)
    papers, titles, queries = [], set(), set()
    while len(papers) < n_papers:
        paper = make_paper(rng, fields[len(papers) % len(fields)])
        query = " ".join(paper["keywords"])
        if paper["title"] in titles or query in queries or len(paper["keywords"]) < 3:
            continue
        titles.add(paper["title"])
        queries.add(query)
        papers.append(paper)
    rng.shuffle(papers)
    return papers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample"))
    parser.add_argument("--n_papers", type=int, default=500)
    parser.add_argument("--n_labelled", type=int, default=300, help="papers whose (keywords, title) pair is labelled")
    parser.add_argument("--dev_ratio", type=float, default=0.2)
    parser.add_argument("--neg_per_query", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)
    if not 0 < args.n_labelled <= args.n_papers:
        parser.error("--n_labelled must be between 1 and --n_papers")

    papers = make_papers(args.n_papers, args.seed)
    labelled = papers[: args.n_labelled]  # papers are already shuffled: the first ones are a random subset
    # the records' year is drawn from its own generator: the papers stay what the seed made before records existed
    years = random.Random(args.seed + 7)
    records = [
        Record(
            title=p["title"],
            paper_id=f"sample-{i:05d}",
            keywords=tuple(p["keywords"]),
            abstract=p["abstract"],
            category=FIELDS[p["field"]][0],
            year=years.randint(2005, 2024),
        )
        for i, p in enumerate(papers)
    ]
    counts = write_layout(
        args.output_dir,
        corpus_titles=[p["title"] for p in papers],
        labelled_pairs=[(" ".join(p["keywords"]), p["title"]) for p in labelled],
        unsupervised_texts=[p["title"] for p in papers] + [p["abstract"] for p in papers],
        # no keywords: with the title they are a labelled pair, and pretraining on them would leak the dev pairs
        domain_docs=[p["title"] + "。" + p["abstract"] for p in papers],
        dev_ratio=args.dev_ratio,
        seed=args.seed,
        neg_per_query=args.neg_per_query,
        records=records,
    )
    print(f"wrote {args.output_dir}: {len(papers)} papers, {args.n_labelled} labelled; " + format_counts(counts))


if __name__ == "__main__":
    main()
