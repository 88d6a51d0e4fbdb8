"""High-precision prompt-attack patterns in languages other than English (the English ones are in
``prompt_safety_heuristics``): instruction overrides, system-prompt extraction and "no restrictions" personas.

Written from how such requests are phrased (imperative "ignore/forget" + "previous/above" + "instructions/rules",
"show me your system prompt", "you have no restrictions now", "developer mode"), for the languages the fast tier
routes most: Chinese, German, Spanish, French, Italian, Portuguese, Russian, Japanese, Korean. Each pattern has a
hand-set weight; the weights combine as a noisy-OR and the result is a floor under ``prompt_injection_multi``'s
probability (``multilingual_route``), as the English patterns are under the English model. Cues that benign
requests use too (a "developer mode" setting, "from now on you ...") weigh 0.25-0.5 and only add up.

Patterns run on ``multilingual.normalize``'d text (NFKC, casefolded, accents kept). Each is a plain regular
expression with bounded gaps (``.{0,30}``), so matching is linear in the text.
"""

from __future__ import annotations

import re

__all__ = ["pattern_score"]

_I, _J = "injection", "jailbreak"
_WEAK = 0.25

_ZH_OVERRIDE_VERB = "(?:忽略|无视|忽视|忘记|忘掉|不要理会|别理会|不用管|抛开|丢弃|跳过|撤销|作废)"
_ZH_PRIOR = "(?:之前|以前|先前|此前|上面|以上|前面|上述|所有|全部|一切|原有|原来|原先|原始|最初|系统)"
_ZH_RULES = "(?:指示|指令|说明|规则|设定|提示|要求|命令|限制|约束|规定|设置|提示词)"
_ZH_SECRET = "(?:系统提示词?|系统指令|系统消息|系统设定|初始指令|初始提示|隐藏(?:的)?(?:设定|指令|提示|规则)|提示词|原始指令|内部指令|预设指令)"

_DE_PRIOR = "(?:vorherigen?|bisherigen?|vorigen?|obigen?|früheren?|alten?|ursprünglichen?|gesamten?|ganzen?|initialen?|system)"
_DE_RULES = "(?:anweisungen|anweisung|anordnungen|instruktionen|vorgaben|regeln|befehle|richtlinien|systemanweisung(?:en)?|systemprompts?|prompts?)"
_ES_RULES = "(?:instrucciones|instrucción|indicaciones|órdenes|reglas|directrices|normas|restricciones|prompt)"
_ES_PRIOR = "(?:anteriores|previas|previos|de arriba|originales|iniciales|del sistema|de sistema|anterior|dadas)"
_FR_RULES = "(?:instructions|consignes|règles|directives|ordres|prompt)"
_FR_PRIOR = "(?:précédentes|antérieures|initiales|ci-dessus|du système|d'origine|originales|précédente|données)"
_IT_RULES = "(?:istruzioni|regole|direttive|indicazioni|ordini|prompt)"
_IT_PRIOR = "(?:precedenti|iniziali|di sistema|del sistema|sopra|originali|ricevute)"
_PT_RULES = "(?:instruções|instrução|regras|diretrizes|orientações|ordens|prompt)"
_PT_PRIOR = "(?:anteriores|prévias|iniciais|do sistema|de sistema|acima|originais|recebidas)"
_RU_RULES = "(?:инструкци\\w*|указани\\w*|правил\\w*|команд\\w*|директив\\w*|промпт\\w*|установк\\w*)"
_RU_PRIOR = "(?:предыдущ\\w*|прежн\\w*|прошл\\w*|исходн\\w*|системн\\w*|вс[еёи]\\w*|данн\\w*|выше)"


def _either(verb: str, prior: str, rules: str) -> str:
    """``verb`` then, within a short gap, ``rules`` next to ``prior`` in either order (adjectives follow nouns in
    Romance languages and precede them in German and Russian)."""
    return (rf"{verb}.{{0,30}}?(?:{prior}.{{0,15}}?{rules}|{rules}.{{0,15}}?{prior})")


_SPEC: tuple[tuple[str, float, str], ...] = (
    # --- Chinese
    (f"{_ZH_OVERRIDE_VERB}.{{0,8}}?{_ZH_PRIOR}.{{0,8}}?{_ZH_RULES}", 0.9, _I),
    (f"(?:告诉|输出|显示|打印|透露|泄露|重复|给出|展示|说出|发给|列出|复述|念出)(?:我|一下)?.{{0,8}}?{_ZH_SECRET}", 0.85, _I),
    (f"你的{_ZH_SECRET}", 0.6, _I),
    ("你.{0,12}?(?:不受|没有|摆脱了?|解除了?|不再受|不需要遵守|无需遵守|不用遵守)(?:任何)?.{0,6}?"
     "(?:限制|约束|审查|过滤|规则|道德|准则|安全策略|内容政策)", 0.8, _J),
    ("(?:扮演|你现在是|你将成为|假装你是|你就是).{0,12}?(?:dan|不受限制|没有限制|无所不能|没有任何限制|无限制)", 0.85, _J),
    ("(?:上帝|越狱|无限制|无审查|不受限|管理员|维护|调试|超级用户)模式", 0.7, _J),
    ("开发者模式", _WEAK, _J),  # also a real phone setting
    ("从现在(?:开始|起),?你(?:就是|是|将|必须|要|只)", _WEAK, _J),
    ("(?:安全|内容)(?:过滤器?|审查|限制)(?:已经?|现已)?(?:关闭|解除|禁用|失效)", 0.7, _J),
    ("(?:新的?|真正的|更新后?的|最新的?|实际的)(?:指令|指示|任务|系统提示词?|规则)\\s*:", 0.6, _I),
    ("(?:不要|别|切勿|不准|不得)(?:告诉|通知|提醒|告知|让)用户", 0.7, _I),
    # addressing the model from inside a document or tool output (indirect injection)
    ("(?:致|给|写给|提醒|注意)[,，]?\\s*(?:ai|人工智能|语言模型|大模型|ai助手|智能助手|助手|模型|机器人|llm|gpt|chatgpt)\\s*(?:[:：]|的指令|们)",
     0.6, _I),
    ("(?:把|将)[^。!?]{0,20}?(?:对话|聊天记录|历史记录|密码|密钥|令牌|用户(?:数据|信息|资料)|系统提示词?)[^。!?]{0,20}?"
     "(?:发送|发到|发给|上传|提交|转发|附加|拼接|编码)[^。!?]{0,20}?(?:https?://|www\\.|邮箱|@|链接|网址)", 0.85, _I),
    ("(?:两个|两种|双重)(?:回答|回复|版本|人格|答案).{0,30}?(?:不受限制|没有限制|无限制|越狱|没有任何限制|不受任何)", 0.8, _J),
    ("(?:任务|翻译|总结|摘要)(?:已经?)?(?:完成|结束)了?[。.!！,，]\\s*(?:现在|接下来|下面|然后)(?:请|你)?(?:执行|忽略|输出|告诉|把)", 0.6, _I),
    # --- German
    (_either(r"\b(?:ignorier|vergiss|vergesst|vergessen sie|missachte|überspring|verwirf|übergeh|setz)\w*",
             _DE_PRIOR, _DE_RULES), 0.9, _I),
    (r"\b(?:zeig|gib|nenn|verrat|wiederhol|druck|schreib|gib|leg)\w*\s+(?:mir\s+)?(?:\w+\s+){0,3}?(?:deinen?|deine|den|die)"
     r"\s+(?:\w+\s+)?(?:system-?prompt|systemanweisung\w*|systemnachricht|anfangsanweisung\w*|ursprünglichen anweisungen"
     r"|versteckten anweisungen|internen anweisungen|geheimen anweisungen|vorgaben)", 0.85, _I),
    (r"\bdu\s+(?:bist|hast|unterliegst|brauchst)\s+(?:\w+\s+){0,3}?(?:keine[nr]?|nicht mehr an|ohne)\s+(?:\w+\s+)?"
     r"(?:einschränkungen|beschränkungen|regeln|filter|zensur|richtlinien|grenzen|vorgaben)", 0.8, _J),
    (r"\b(?:bisherigen|vorherigen|alten)\s+(?:vorgaben|anweisungen|regeln)\s+(?:gelten|sind)\s+(?:nicht mehr|ab sofort nicht"
     r"|aufgehoben|ungültig|hinfällig)", 0.85, _I),
    (r"\b(?:neue|echte|aktualisierte|eigentliche|wahre)\s+(?:anweisung(?:en)?|anordnung(?:en)?|aufgabe|systemanweisung(?:en)?|regeln)\s*:",
     0.6, _I),
    (r"\b(?:sag|erzähl|verrat|zeig)\w*\s+(?:es\s+|das\s+|davon\s+)?(?:dem|den)\s+(?:nutzer|benutzer|user)\w*\s+nicht"
     r"|\bohne\s+(?:dass\s+)?(?:der|den)\s+(?:nutzer|benutzer)\w*\s+(?:es\s+)?(?:merkt|zu informieren|bemerkt)", 0.7, _I),
    (r"\b(?:an|für|hinweis für|notiz für|achtung)\s+(?:die|den|das)?\s*(?:ki|ki-assistenten|assistenten|sprachmodell|ai|llm|bot)"
     r"\s*:", 0.6, _I),
    (r"\b(?:schick|send|übermittel|lad|häng|kodier)\w*\s+(?:\w+\s+){0,4}?(?:den gesprächsverlauf|das gespräch|den chatverlauf"
     r"|die unterhaltung|passw\w*|zugangsdaten|api-?schlüssel|nutzerdaten|systemprompt)\b.{0,40}?(?:https?://|www\.|@)",
     0.85, _I),
    (r"\b(?:gott|admin|debug|wartungs|jailbreak)-?modus\b", 0.5, _J),
    (r"\bentwicklermodus\b|\bdeveloper-?modus\b", _WEAK, _J),  # a real Android setting too
    # --- Spanish
    (_either(r"\b(?:ignora|ignore|ignoren|olvida|olvide|olviden|omite|omita|descarta|pasa por alto|haz caso omiso"
             r"|no hagas caso)\w*", _ES_PRIOR, _ES_RULES), 0.9, _I),
    (r"\b(?:muestra|muéstrame|dime|revela|revélame|repite|imprime|escribe|dame|enséñame)\w*\s+(?:\w+\s+){0,3}?"
     r"(?:tu|tus|el|las|los)\s+(?:prompt (?:del|de) sistema|instrucciones (?:del sistema|internas|ocultas|originales"
     r"|iniciales|secretas)|mensaje del sistema|indicaciones (?:ocultas|internas|del sistema))", 0.85, _I),
    (r"\b(?:ya no tienes|no tienes|sin|libre de)\s+(?:ningún tipo de\s+|ninguna\s+|ningun\s+)?(?:restricciones|filtros"
     r"|límites|censura|reglas)\b.{0,40}?\b(?:responde|contesta|puedes|debes)", 0.7, _J),
    (r"\b(?:nuevas|verdaderas|auténticas|actualizadas|reales)\s+(?:instrucciones|órdenes|reglas|indicaciones)\s*:", 0.6, _I),
    (r"\bno\s+(?:le\s+)?(?:digas|diga|informes|informe|avises|avise|menciones|mencione|cuentes)\s+(?:nada\s+)?al usuario",
     0.7, _I),
    (r"\b(?:nota|mensaje|aviso|instrucción)\s+(?:para|a)\s+(?:la|el)\s+(?:ia|asistente|modelo|bot|llm)\b\s*:?", 0.6, _I),
    (r"\b(?:envía|envia|manda|sube|reenvía|adjunta|codifica)\w*\s+(?:\w+\s+){0,4}?(?:el historial|la conversación|el chat"
     r"|las contraseñas?|la contraseña|las credenciales|los datos del usuario|el prompt del sistema)\b.{0,40}?"
     r"(?:https?://|www\.|@)", 0.85, _I),
    (r"\bmodo (?:dios|sin restricciones|sin filtros|sin censura)\b", 0.6, _J),
    # --- French
    (_either(r"\b(?:ignore|ignorez|oublie|oubliez|ne tiens pas compte|ne tenez pas compte|fais abstraction)\w*",
             _FR_PRIOR, _FR_RULES), 0.9, _I),
    (r"\b(?:montre|affiche|révèle|répète|donne|dis|écris|imprime)\w*[- ](?:moi\s+)?(?:\w+\s+){0,3}?(?:ton|tes|le|les|votre|vos)"
     r"\s+(?:prompt (?:système|initial)|instructions (?:système|initiales|cachées|internes|secrètes|d'origine)"
     r"|message système)", 0.85, _I),
    (r"\bmode (?:dieu|sans restriction|sans filtre|sans censure)s?\b", 0.6, _J),
    # --- Italian, Portuguese
    (_either(r"\b(?:ignora|ignorate|dimentica|dimenticate|tralascia|non considerare)\w*", _IT_PRIOR, _IT_RULES), 0.9, _I),
    (r"\b(?:mostra|rivela|ripeti|stampa|scrivi|dimmi|dammi)\w*\s+(?:\w+\s+){0,3}?(?:il tuo|le tue|il|le)\s+(?:prompt di"
     r" sistema|istruzioni (?:di sistema|iniziali|nascoste|interne|segrete)|messaggio di sistema)", 0.85, _I),
    (_either(r"\b(?:ignore|ignora|esqueça|esqueca|esquece|desconsidere|desconsidera|descarte)\w*", _PT_PRIOR, _PT_RULES),
     0.9, _I),
    (r"\b(?:mostre|mostra|revele|revela|repita|repete|imprima|diga|diz|escreva)\w*\s+(?:\w+\s+){0,3}?(?:o seu|os seus|as suas"
     r"|seu|suas|o|as)\s+(?:prompt (?:do|de) sistema|instruções (?:do sistema|iniciais|ocultas|internas|secretas)"
     r"|mensagem do sistema)", 0.85, _I),
    (r"\bmod[oe] (?:deus|sem restrições|sem filtros|sem censura|senza restrizioni|senza filtri|dio)\b", 0.6, _J),
    (r"\b(?:modo|mode) (?:desarrollador|desenvolvedor|sviluppatore|développeur)\b", _WEAK, _J),
    # --- Russian
    (_either(r"(?:игнорируй|игнорируйте|забудь|забудьте|не обращай внимания на|отбрось|отбросьте|проигнорируй|отмени)\w*",
             _RU_PRIOR, _RU_RULES), 0.9, _I),
    (r"(?:покажи|выведи|раскрой|повтори|напиши|скажи|распечатай)\w*\s+(?:мне\s+)?(?:\w+\s+){0,2}?(?:свой|свои|твой|твои|"
     r"системн\w*)\s+(?:системн\w*\s+)?(?:промпт\w*|инструкци\w*|подсказк\w*|сообщени\w*)", 0.85, _I),
    (r"\bрежим (?:бога|без ограничений|без цензуры)\b", 0.6, _J),
    (r"\bрежим разработчика\b", _WEAK, _J),
    (r"\bу тебя (?:больше )?нет (?:никаких )?(?:ограничений|правил|фильтров|цензуры)", 0.8, _J),
    # --- Japanese, Korean
    ("(?:以前|前|上記|これまで|最初|元|すべて|全て|今まで|システム)の(?:指示|命令|ルール|設定|指令|プロンプト|制約)"
     ".{0,8}?(?:無視|忘れ|破棄|取り消)", 0.9, _I),
    ("(?:システムプロンプト|隠された指示|初期設定の指示|内部の指示).{0,12}?(?:教え|表示|出力|見せ|繰り返|書き出)", 0.85, _I),
    ("(?:制限|フィルター|検閲|ルール)(?:は|が|を)?(?:一切|もう|すべて)?(?:ない|無い|ありません|解除|無効)", 0.5, _J),
    ("(?:이전|앞의|위의|모든|기존|원래)\\s*(?:지시|지침|명령|규칙|설정|프롬프트)\\w*\\s*.{0,8}?(?:무시|잊어|잊고|취소)", 0.9, _I),
    ("시스템\\s*프롬프트.{0,12}?(?:알려|보여|출력|공개|말해)", 0.85, _I),
    ("(?:제한|필터|검열|규칙)(?:이|은|을|도)?\\s*(?:전혀\\s*)?(?:없|해제|무시)", 0.5, _J),
)
_PATTERNS = tuple((re.compile(src), weight, kind) for src, weight, kind in _SPEC)


def pattern_score(norm: str) -> tuple[float, str | None]:
    """``(noisy-OR of the weights of the patterns that fire, kind of the strongest or None)`` on normalized text."""
    keep, best, kind = 1.0, 0.0, None
    for rx, weight, k in _PATTERNS:
        if rx.search(norm):
            keep *= 1 - weight
            if weight > best:
                best, kind = weight, k
    score = round(1 - keep, 4)
    return score, (kind if score >= 0.5 else None)
