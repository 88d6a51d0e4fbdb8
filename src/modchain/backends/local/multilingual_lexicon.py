"""Hand-written evidence for the multilingual fast-tier models (``multilingual``): a Chinese insult/profanity
lexicon, and the CJK character ranges the featurizer splits on.

The Chinese lexicon plays the part ``toxicity_lexicon`` plays for English, twice over:

* **Features** -- each entry that occurs in a text adds its label (``l:INSULT``) and, for the strong entries, a
  ``l:strong`` flag to the ``toxicity_zh`` model's lexicon family. COLD, the training set, is about race, gender
  and region; these flags are what lets the model carry what it learned there to personal abuse elsewhere (the
  character n-grams of an insult COLD never saw have no weight).
* **Attribution** -- which of Comprehend's seven labels a Chinese text's toxicity probability goes to (the
  strongest evidence gets the probability; with none: HATE_SPEECH when a group is named, else INSULT when the
  text addresses "you", else HARASSMENT_OR_ABUSE -- the same rule as the English scorer).

Entries are matched as substrings of the NFKC-casefolded text (Chinese has no word boundaries). Words that are
also ordinary words in some compounds ("垃圾" in "垃圾分类", "滚" in "滚动") are left out or only counted as
weak evidence. The slurs are listed verbatim because a detector has to know them.
"""

from __future__ import annotations

import re

__all__ = ["CJK", "GROUP_WORDS", "STRONG", "YOU_WORDS", "ZH_LEXICON", "lexicon_hits", "quoted_share"]

# label -> {weight: space-separated entries}; weight >= STRONG marks an entry as unambiguous abuse
_SPEC: dict[str, dict[float, str]] = {
    "PROFANITY": {
        0.8: "他妈的 他媽的 妈的 媽的 操你 草泥马 草你 肏 艹你 日你 卧槽 我操 我靠 tmd nmd cnm wcnm 特么 尼玛 你妈逼 屌 "
             "他娘的 操蛋 这个逼 你丫 老子",
        0.4: "靠 tm 狗屁 放屁 屁话",
    },
    "INSULT": {
        0.85: "傻逼 傻b 傻屄 煞笔 沙比 傻叉 sb 脑残 智障 弱智 白痴 蠢货 蠢猪 废物 人渣 贱人 贱货 狗东西 畜生 畜牲 王八蛋 "
              "混蛋 杂种 狗杂种 败类 垃圾人 臭婊子 婊子 丑八怪 猪脑子 狗日的 二逼 傻屌 low逼 人渣败类 吃屎 废柴 废人 烂人 "
              "饭桶 菜狗 菜鸡 狗裁判 疯狗 欠揍 可怜虫 喷子 键盘侠 脑子被门夹 脑子有坑 猴子派来的 吃软饭 势利眼 文盲 "
              "没一个好东西 一群狗 水军狗 吸血鬼 寄生虫",
        0.5: "傻子 二货 蠢 笨蛋 神经病 有病 脑子有病 脑子进水 不要脸 贱 下贱 恶心 丢人 丢脸 没脑子 低能 奇葩 屌丝 猪头 "
             "狗腿子 舔狗 loser 你算什么东西 算个屁 懂个屁 失败者 浆糊 跟屎一样 是猪吗 眼瞎 瞎了吗 梦游 托儿 水军",
    },
    "HATE_SPEECH": {
        0.85: "黑鬼 黑皮猪 支那 小日本 日本鬼子 鬼子 棒子 高丽棒子 阿三 绿绿 蝗虫 娘炮 死基佬 死gay 女拳 田园女权 "
              "母狗 普信女 捞女 小仙女 黑蛆 尼哥",
        0.5: "基佬 黑人都 女人都 男人都 都是骗子 滚回 劣等 低等民族 劣等民族 下等人",
    },
    "VIOLENCE_OR_THREAT": {
        0.9: "杀了你 弄死你 打死你 砍死你 捅死你 杀你全家 宰了你 灭了你 烧死你 人肉你 查你住哪 找你算账 "
              "别想好过 混不下去 小心你 你们等着 你给我等着 迟早烧了",
        0.5: "去死 死全家 全家死光 不得好死 该死 死开 弄死 打死 砍死 炸死",
    },
    "HARASSMENT_OR_ABUSE": {
        0.85: "你妈死了 死妈 没妈 滚出去 滚蛋 给我滚 滚开 你配吗 挂网上 挂出来 一起去骂 去他主页骂 刷屏骂 "
             "天天蹲你 社死",
        0.4: "滚 孤儿 闭嘴",
    },
    "SEXUAL": {
        0.85: "骚货 骚逼 操逼 鸡巴 约炮 卖淫 裸照 援交",
        0.4: "骚 鸡婆",
    },
}
STRONG = 0.8


def _build() -> dict[str, tuple[tuple[str, float], ...]]:
    merged: dict[str, dict[str, float]] = {}
    for label, tiers in _SPEC.items():
        for weight, words in tiers.items():
            for word in words.split():
                merged.setdefault(word, {})[label] = weight
    return {word: tuple(hits.items()) for word, hits in merged.items()}


ZH_LEXICON: dict[str, tuple[tuple[str, float], ...]] = _build()
# Longest first, so an alternation matches "傻逼" before "傻"; Latin entries ("sb", "tmd") only as whole words.
_LATIN = re.compile(r"[a-z]")
_PATTERN = re.compile("|".join(
    (rf"(?<![a-z]){re.escape(w)}(?![a-z])" if _LATIN.match(w) else re.escape(w))
    for w in sorted(ZH_LEXICON, key=len, reverse=True)))
# Groups COLD is about (race, gender, region) and "you": they pick the label an unattributed score goes to.
GROUP_WORDS = re.compile("黑人|白人|黄种人|非洲|女人|男人|女性|男性|女权|同性恋|穆斯林|回民|犹太|外地人|河南人|东北人|上海人"
                         "|北京人|广东人|四川人|新疆人|农村人|乡下人|日本人|韩国人|印度人|美国人|外国人")
YOU_WORDS = re.compile("你|您|妳|尔等")


def lexicon_hits(norm: str) -> list[tuple[str, tuple[tuple[str, float], ...]]]:
    """``(entry, ((label, weight), ...))`` for every lexicon entry in ``norm`` (NFKC-casefolded text), left to
    right without overlaps (one ``re`` scan: linear in the text)."""
    return [(m.group(), ZH_LEXICON[m.group()]) for m in _PATTERN.finditer(norm)]


# A short quotation: someone reporting or condemning an insult quotes it ("他骂了一句“蠢货”，已经举报了").
_QUOTED = re.compile("[“「『\"][^”」』\"]{1,40}[”」』\"]")


def quoted_share(norm: str) -> tuple[int, int]:
    """``(lexicon hits inside short quotations, all lexicon hits)`` of ``norm``."""
    spans = [m.span() for m in _QUOTED.finditer(norm)]
    hits = list(_PATTERN.finditer(norm))
    inside = sum(any(a <= m.start() and m.end() <= b for a, b in spans) for m in hits)
    return inside, len(hits)


# Han (with extension A and compatibility ideographs), kana, Hangul syllables: one character carries about a word.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
