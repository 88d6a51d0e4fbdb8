"""The offline language detector: everyday sentences per language, short and ambiguous texts, limits.

Sentences were written for this test (everyday chat and support requests) and pass the decontam check
(python /work/shared/decontam/decontam.py on their JSONL dump, see ``dump_jsonl``).
"""

from __future__ import annotations

import json
import time

import pytest

from modchain.core.errors import InputError
from modchain.core.language import LanguageGuess, detect_language, guess_language

SENTENCES: dict[str, list[str]] = {
    "en": [
        "Could you send me the invoice for last month when you get a chance?",
        "I forgot my password and the reset link does not arrive in my inbox.",
        "We are running a bit late, the train was stuck outside the station.",
        "What time does the pharmacy on the corner close on Sundays?",
        "My daughter wants to learn the piano but she has no patience for scales.",
        "Thanks for the quick reply, that fixed the problem with the printer.",
        "Is there a vegetarian option on the lunch menu this week?",
        "The parcel was left at the neighbour's door and now it is gone.",
    ],
    "de": [
        "Kannst du mir bitte sagen, wann der nächste Bus nach Hause fährt?",
        "Ich habe mein Passwort vergessen und bekomme keine E-Mail zum Zurücksetzen.",
        "Wir kommen etwas später, weil die Straße wegen Bauarbeiten gesperrt ist.",
        "Die Rechnung vom letzten Monat ist noch nicht bei mir angekommen.",
        "Gibt es in der Kantine heute auch ein vegetarisches Gericht?",
        "Mein Sohn möchte ein Instrument lernen, aber er übt nie.",
        "Vielen Dank für die schnelle Antwort, jetzt funktioniert der Drucker wieder.",
        "Das Paket wurde beim Nachbarn abgegeben und ist jetzt verschwunden.",
    ],
    "es": [
        "¿Me puedes mandar la factura del mes pasado cuando tengas un momento?",
        "Olvidé mi contraseña y no me llega el correo para cambiarla.",
        "Vamos a llegar tarde porque el tren se quedó parado antes de la estación.",
        "¿A qué hora cierra la farmacia de la esquina los domingos?",
        "Mi hija quiere aprender a tocar el piano pero no tiene paciencia.",
        "Gracias por la respuesta tan rápida, ya funciona la impresora.",
        "¿Hay alguna opción vegetariana en el menú de esta semana?",
        "Dejaron el paquete en la puerta del vecino y ahora no está.",
    ],
    "fr": [
        "Tu peux m'envoyer la facture du mois dernier quand tu as un moment ?",
        "J'ai oublié mon mot de passe et je ne reçois pas le lien de réinitialisation.",
        "Nous allons arriver en retard, le train est bloqué avant la gare.",
        "À quelle heure ferme la pharmacie du coin le dimanche ?",
        "Ma fille veut apprendre le piano mais elle n'a aucune patience.",
        "Merci pour la réponse rapide, l'imprimante marche de nouveau.",
        "Est-ce qu'il y a un plat végétarien au menu cette semaine ?",
        "Le colis a été déposé chez le voisin et maintenant il a disparu.",
    ],
    "it": [
        "Mi puoi mandare la fattura del mese scorso quando hai un attimo?",
        "Ho dimenticato la password e non mi arriva la mail per reimpostarla.",
        "Arriviamo in ritardo perché il treno è fermo prima della stazione.",
        "A che ora chiude la farmacia all'angolo la domenica?",
        "Mia figlia vuole imparare il pianoforte ma non ha pazienza.",
        "Grazie per la risposta veloce, adesso la stampante funziona di nuovo.",
        "C'è un piatto vegetariano nel menù di questa settimana?",
        "Il pacco è stato lasciato dal vicino e adesso non si trova più.",
    ],
    "pt": [
        "Você pode me mandar a fatura do mês passado quando tiver um tempo?",
        "Esqueci minha senha e não recebo o e-mail para redefinir.",
        "Vamos chegar atrasados porque o trem parou antes da estação.",
        "Que horas a farmácia da esquina fecha aos domingos?",
        "Minha filha quer aprender piano, mas não tem paciência nenhuma.",
        "Obrigado pela resposta rápida, a impressora já está funcionando.",
        "Tem alguma opção vegetariana no cardápio desta semana?",
        "Deixaram o pacote na porta do vizinho e agora ele sumiu.",
    ],
    "zh": [
        "你能把上个月的发票发给我吗？",
        "我忘记密码了，重置邮件一直没有收到。",
        "火车在车站外面停了很久，我们要晚一点到。",
        "街角那家药店星期天几点关门？",
        "我女儿想学钢琴，可是她没有耐心练习。",
        "谢谢你这么快回复，打印机已经可以用了。",
        "这个星期的午餐有素食吗？",
        "快递放在邻居门口，现在不见了。",
    ],
    "ja": [
        "先月の請求書を送っていただけますか？",
        "パスワードを忘れてしまい、再設定のメールが届きません。",
        "電車が駅の手前で止まってしまったので、少し遅れます。",
        "角の薬局は日曜日に何時に閉まりますか？",
        "娘がピアノを習いたいと言っていますが、練習が続きません。",
        "早速のお返事ありがとうございます。プリンターが直りました。",
        "今週のランチにベジタリアンのメニューはありますか？",
        "荷物が隣の家の前に置かれていて、なくなってしまいました。",
    ],
    "ko": [
        "지난달 청구서를 보내 주실 수 있나요?",
        "비밀번호를 잊어버렸는데 재설정 메일이 오지 않아요.",
        "기차가 역 앞에서 멈춰서 조금 늦을 것 같아요.",
        "모퉁이에 있는 약국은 일요일에 몇 시에 문을 닫나요?",
        "딸이 피아노를 배우고 싶어 하는데 연습을 싫어해요.",
        "빠른 답변 감사합니다. 프린터가 다시 잘 됩니다.",
        "이번 주 점심 메뉴에 채식 메뉴가 있나요?",
        "택배가 이웃집 문 앞에 놓였는데 지금은 없어졌어요.",
    ],
    "ru": [
        "Можешь прислать мне счёт за прошлый месяц, когда будет время?",
        "Я забыл пароль, а письмо для сброса так и не пришло.",
        "Мы немного опоздаем, поезд встал прямо перед станцией.",
        "Во сколько закрывается аптека на углу по воскресеньям?",
        "Дочка хочет учиться играть на пианино, но ей не хватает терпения.",
        "Спасибо за быстрый ответ, принтер снова работает.",
        "Есть ли на этой неделе в меню вегетарианское блюдо?",
        "Посылку оставили у двери соседа, и теперь она пропала.",
    ],
    "ar": [
        "هل يمكنك أن ترسل لي فاتورة الشهر الماضي عندما يكون لديك وقت؟",
        "نسيت كلمة المرور ولم تصلني رسالة إعادة التعيين.",
        "سنتأخر قليلا لأن القطار توقف قبل المحطة.",
        "متى تغلق الصيدلية التي في الزاوية يوم الأحد؟",
        "ابنتي تريد أن تتعلم العزف على البيانو لكنها لا تصبر على التمرين.",
        "شكرا على الرد السريع، الطابعة تعمل الآن.",
        "هل توجد وجبة نباتية في قائمة الغداء هذا الأسبوع؟",
        "ترك الطرد عند باب الجار والآن اختفى.",
    ],
    "hi": [
        "क्या आप मुझे पिछले महीने का बिल भेज सकते हैं?",
        "मैं अपना पासवर्ड भूल गया और रीसेट वाला ईमेल नहीं आया।",
        "ट्रेन स्टेशन से पहले रुक गई है, हम थोड़ा देर से पहुँचेंगे।",
        "कोने वाली दवा की दुकान रविवार को कितने बजे बंद होती है?",
        "मेरी बेटी पियानो सीखना चाहती है लेकिन उसमें धैर्य नहीं है।",
        "जल्दी जवाब देने के लिए धन्यवाद, प्रिंटर अब चल रहा है।",
        "क्या इस हफ्ते के खाने में कुछ शाकाहारी है?",
        "पार्सल पड़ोसी के दरवाज़े पर छोड़ा गया था और अब गायब है।",
    ],
    # Fewer cases for languages the detector covers with less depth.
    "nl": ["Kun je mij de factuur van vorige maand sturen?", "Ik ben mijn wachtwoord vergeten en krijg geen mail."],
    "tr": ["Geçen ayın faturasını bana gönderebilir misin?", "Şifremi unuttum ve sıfırlama e-postası gelmedi."],
    "id": ["Bisa kirim tagihan bulan lalu ke saya?", "Saya lupa kata sandi dan emailnya tidak datang."],
    "vi": ["Bạn có thể gửi cho tôi hóa đơn tháng trước không?", "Tôi quên mật khẩu và không nhận được email."],
    "tl": ["Pwede mo bang ipadala sa akin ang bill noong nakaraang buwan?", "Nakalimutan ko ang password ko at wala pang email."],
    "uk": ["Чи можеш надіслати мені рахунок за минулий місяць?"],
    "th": ["ช่วยส่งใบแจ้งหนี้ของเดือนที่แล้วให้หน่อยได้ไหม"],
    "bn": ["আপনি কি আমাকে গত মাসের বিলটা পাঠাতে পারবেন?"],
    "el": ["Μπορείς να μου στείλεις τον λογαριασμό του προηγούμενου μήνα;"],
    "he": ["אתה יכול לשלוח לי את החשבונית של החודש שעבר?"],
}

UNDETERMINED_TEXTS = [
    "", "   ", "ok", "lol", "hi", "123-45-6789", "!!!", "???", "👍👍", "你", "https://x.io/a?b=1",
    "Refund order 4471",  # no function word: nothing to tell English from Dutch or German
]


def dump_jsonl(path: str) -> None:
    """Write every text of this module as JSONL (``{"text": ...}``) for the decontam check."""
    with open(path, "w", encoding="utf-8") as out:
        for texts in SENTENCES.values():
            for text in texts:
                out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")


@pytest.mark.parametrize(
    ("language", "text"), [(language, text) for language, texts in SENTENCES.items() for text in texts]
)
def test_everyday_sentences(language, text):
    assert detect_language(text) == language


def test_at_least_eight_sentences_for_the_main_languages():
    for language in ("en", "de", "es", "fr", "it", "pt", "zh", "ja", "ko", "ru", "ar", "hi"):
        assert len(SENTENCES[language]) >= 8


@pytest.mark.parametrize("text", UNDETERMINED_TEXTS)
def test_short_or_letterless_texts_are_undetermined(text):
    assert detect_language(text) == "und"


def test_mixed_scripts_without_a_majority_are_undetermined():
    assert detect_language("ok 好") == "und"
    # A Hindi sentence with one English word is still Hindi.
    assert detect_language("मुझे अपना password याद नहीं है, मदद कीजिए") == "hi"


def test_chinese_with_a_stray_kana_is_chinese_and_japanese_needs_kana():
    assert detect_language("我们明天ー起去公园散步吧，天气应该很好") == "zh"
    assert detect_language("明日は一緒に公園を散歩しましょう") == "ja"


def test_guess_carries_confidence_and_script():
    guess = guess_language("Где находится ближайшая аптека?")
    assert isinstance(guess, LanguageGuess)
    assert (guess.language, guess.script) == ("ru", "Cyrillic")
    assert 0.0 < guess.confidence <= 1.0


def test_non_text_fails_closed():
    with pytest.raises(InputError):
        detect_language(b"bytes are not text")  # type: ignore[arg-type]


def test_long_text_work_is_bounded():
    # A huge text costs about what its bounded sample costs: the detector never reads it all.
    sentence = "Ich habe mein Passwort vergessen und bekomme keine E-Mail. "
    short = sentence * 40
    huge = sentence * 200_000  # ~12 MB
    assert detect_language(huge) == "de"
    start = time.perf_counter()
    detect_language(short)
    short_s = time.perf_counter() - start
    start = time.perf_counter()
    detect_language(huge)
    huge_s = time.perf_counter() - start
    assert huge_s < max(50 * short_s, 0.05)


def test_language_far_in_a_long_text_is_sampled():
    # The spread windows see the body of a long document, not only its (English) header.
    text = "Subject: report. " + "Der Bericht ist fertig und liegt auf dem Server. " * 400
    assert detect_language(text) == "de"
