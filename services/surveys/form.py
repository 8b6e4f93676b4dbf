"""The public form page behind a QR code or an SMS link: plain HTML in Vietnamese, readable on a phone.

The page is rendered from the instrument version in force, so a new version changes the form without a
deployment. It posts JSON to the same ``POST /v1/responses`` every kiosk uses (a few lines of script, no
framework, no external asset: the page must load on a slow mobile connection in a commune) and shows the
service's answer: thanks, or the reasons in Vietnamese next to the questions they concern.
"""

from __future__ import annotations

import json
from html import escape

from services.surveys.domain import Instrument, ItemKind

__all__ = ["render_form", "render_message"]

_AGE_LABEL = "Độ tuổi"
_TYPE_LABELS = {"citizen": "Cá nhân (người dân)", "organisation": "Tổ chức, doanh nghiệp", "official": "Cán bộ"}
_SEX_LABELS = {"male": "Nam", "female": "Nữ"}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:0 12px 40px;
max-width:720px;margin:auto;line-height:1.45;color:#1b1b1b;background:#fafafa}
h1{font-size:1.25rem;margin:16px 0 4px}p.note{color:#555;font-size:.9rem}
fieldset{border:1px solid #ddd;border-radius:8px;margin:14px 0;padding:8px 12px;background:#fff}
legend{font-weight:600;padding:0 4px}.q{margin:10px 0 14px}.q p{margin:0 0 6px}
label{display:block;padding:8px 6px;border-radius:6px;min-height:24px}label:active{background:#eef}
input[type=radio],input[type=checkbox]{transform:scale(1.3);margin-right:10px}
.req{color:#b00}.err{color:#b00;font-size:.9rem;margin:4px 0}
button{width:100%;font-size:1.1rem;padding:14px;border:0;border-radius:8px;background:#0b5cad;color:#fff}
#result{margin:16px 0;font-weight:600}
"""

_SCRIPT = """
(function(){
var form=document.getElementById('survey');
var out=document.getElementById('result');
function checked(name){return Array.prototype.slice.call(
  form.querySelectorAll('input[name="'+name+'"]:checked')).map(function(x){return x.value;});}
form.addEventListener('submit',function(ev){
  ev.preventDefault();
  var answers={};
  CONFIG.items.forEach(function(it){
    var v=checked(it.id);
    if(!v.length)return;
    answers[it.id]=it.kind==='multi_choice'?v:(it.kind==='scale'?parseInt(v[0],10):v[0]);
  });
  var respondent={type:checked('respondent.type')[0],age_band:checked('respondent.age_band')[0],
    sex:checked('respondent.sex')[0]};
  var eth=checked('respondent.ethnicity');if(eth.length)respondent.ethnicity=eth[0];
  var body={token:CONFIG.token,instrument_id:CONFIG.instrument_id,
    instrument_version:CONFIG.instrument_version,respondent:respondent,answers:answers};
  Array.prototype.forEach.call(document.querySelectorAll('.err'),function(e){e.textContent='';});
  out.textContent='Đang gửi...';
  var button=form.querySelector('button');button.disabled=true;
  fetch(CONFIG.endpoint,{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(body)})
  .then(function(r){return r.json().then(function(j){return {status:r.status,body:j};});})
  .then(function(r){
    if(r.status===201||r.status===200){form.style.display='none';
      out.textContent='Cảm ơn Ông/Bà đã đánh giá! Ý kiến đã được ghi nhận.';out.className='ok';return;}
    button.disabled=false;
    var detail=Array.isArray(r.body.detail)?r.body.detail:[];
    out.textContent='Chưa gửi được: vui lòng kiểm tra các câu được đánh dấu.';out.className='bad';
    detail.forEach(function(d){
      var field=String(d.field||d.loc||'').replace(/^answers\\./,'');
      var slot=document.getElementById('err-'+field);
      var text=d.rule&&d.rule.indexOf('required')===0?'Vui lòng trả lời câu này.':(d.rule||d.msg||'');
      if(slot){slot.textContent=text;}else{out.textContent+=' '+(d.rule||d.msg||'');}
    });
  }).catch(function(){button.disabled=false;out.textContent='Không kết nối được, vui lòng thử lại.';});
});
})();
"""


def _choice(name: str, value: str, label: str, *, multi: bool = False) -> str:
    kind = "checkbox" if multi else "radio"
    return f'<label><input type="{kind}" name="{escape(name)}" value="{escape(value)}">{escape(label)}</label>'


def _question(name: str, text: str, choices: list[str], *, required: bool) -> str:
    star = ' <span class="req">*</span>' if required else ""
    return (
        f'<div class="q" data-item="{escape(name)}"><p>{escape(text)}{star}</p>{"".join(choices)}'
        f'<div class="err" id="err-{escape(name)}"></div></div>'
    )


def render_form(instrument: Instrument, token: str, *, endpoint: str = "/v1/responses", intro: str = "") -> str:
    """The form of ``instrument`` for the link ``token`` (policy-only items are left out: a link is about a
    dossier, not a policy)."""
    sections: list[str] = []
    items_js: list[dict[str, str]] = []
    for element in instrument.elements:
        questions = []
        for item in element.items:
            if item.needs_policy_group:
                continue
            if item.kind is ItemKind.SCALE:
                assert item.scale is not None
                points = instrument.scales[item.scale].points
                # in the instrument file's order: the questionnaire's author decides (paper forms list
                # "Rất không hài lòng" first; the form must not differ from the paper it replaces)
                choices = [_choice(item.id, str(p), label) for p, label in points.items()]
            else:
                multi = item.kind is ItemKind.MULTI_CHOICE
                choices = [_choice(item.id, code, label, multi=multi) for code, label in (item.options or {}).items()]
            questions.append(_question(item.id, item.text, choices, required=item.required))
            items_js.append({"id": item.id, "kind": item.kind.value})
        if questions:
            sections.append(f"<fieldset><legend>{escape(element.name)}</legend>{''.join(questions)}</fieldset>")
    spec = instrument.respondent
    profile = [
        _question(
            "respondent.type",
            "Ông/Bà là",
            [_choice("respondent.type", t.value, _TYPE_LABELS.get(t.value, t.value)) for t in spec.types],
            required=True,
        ),
        _question(
            "respondent.age_band",
            _AGE_LABEL,
            [_choice("respondent.age_band", band, band) for band in spec.age_bands],
            required=True,
        ),
        _question(
            "respondent.sex",
            "Giới tính",
            [_choice("respondent.sex", value, label) for value, label in _SEX_LABELS.items()],
            required=True,
        ),
    ]
    if spec.ethnicity:
        profile.append(
            _question(
                "respondent.ethnicity",
                "Dân tộc",
                [_choice("respondent.ethnicity", value, value) for value in spec.ethnicity],
                required=False,
            )
        )
    sections.append(
        "<fieldset><legend>Thông tin người trả lời (không ghi họ tên)</legend>" + "".join(profile) + "</fieldset>"
    )
    config = {
        "token": token,
        "instrument_id": instrument.id,
        "instrument_version": instrument.version,
        "endpoint": endpoint,
        "items": items_js,
    }
    # "<" escaped: the JSON sits in a <script> element and must not be able to close it
    config_js = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")
    note = escape(intro) if intro else "Phiếu không ghi họ tên; ý kiến của Ông/Bà giúp cải thiện sự phục vụ."
    return (
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(instrument.title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{escape(instrument.title)}</h1><p class="note">{note}</p>'
        '<noscript><p class="err">Trình duyệt cần bật JavaScript để gửi phiếu.</p></noscript>'
        f'<form id="survey" novalidate>{"".join(sections)}<button type="submit">Gửi đánh giá</button></form>'
        f'<div id="result" role="status"></div>'
        f"<script>var CONFIG={config_js};</script><script>{_SCRIPT}</script></body></html>"
    )


def render_message(title: str, message: str) -> str:
    """A page that only says something (link expired, already answered)."""
    return (
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{escape(title)}</h1><p id="result">{escape(message)}</p></body></html>'
    )
