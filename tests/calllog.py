"""Reads a PKCS#11 call log written by OpenSC's pkcs11-spy and fails on any
call that could bring a key value out of the token or weaken a key:
a CKA_VALUE read of anything but a data object, a key created sensitive
false or extractable true, a wrap, an attribute change, a copy other than
a session copy (a template of CKA_TOKEN false alone, which PKCS#11 makes as
sensitive and unextractable as the original)."""
import re
import sys

FORBIDDEN = {"C_WrapKey", "C_SetAttributeValue", "C_GetObjectSize"}


def session_copy(body):
    """True when a C_CopyObject template sets CKA_TOKEN false and nothing
    else."""
    asked = body.split("[out]")[0]
    attrs = re.findall(r"^\s+(CKA_\w+)\s+(\S+)", asked, re.M)
    return attrs == [("CKA_TOKEN", "False")]


def calls(text):
    """Yields (name, body) for each logged call."""
    parts = re.split(r"^\d+: (C_\w+)\n", text, flags=re.M)
    for i in range(1, len(parts), 2):
        yield parts[i], parts[i + 1]


def check(text):
    problems, class_of, count = [], {}, 0
    for name, body in calls(text):
        count += 1
        obj = re.search(r"^\[in\] hObject = (0x[0-9a-f]+)", body, re.M)
        obj = obj.group(1) if obj else None
        if name in FORBIDDEN:
            problems.append(f"{name} called")
        if name == "C_CopyObject" and not session_copy(body):
            problems.append("C_CopyObject with more than CKA_TOKEN false")
        if name == "C_GetAttributeValue":
            out = re.search(r"^\[out\][^\n]*\n\s+CKA_CLASS\s+(\w+)", body, re.M)
            if out:
                class_of[obj] = out.group(1)
            asked = body.split("[out]")[0]
            if re.search(r"^\s+CKA_VALUE\s", asked, re.M) and \
                    class_of.get(obj) != "CKO_DATA":
                problems.append(f"CKA_VALUE read of object {obj} "
                                f"({class_of.get(obj, 'class not checked')})")
        if name in ("C_CreateObject", "C_GenerateKey") and \
                "CKO_SECRET_KEY" in body:
            if not re.search(r"^\s+CKA_SENSITIVE\s+True", body, re.M) or \
                    not re.search(r"^\s+CKA_EXTRACTABLE\s+False", body, re.M):
                problems.append(f"{name} of a key not sensitive or "
                                "extractable")
    return count, problems


def main():
    with open(sys.argv[1], encoding="utf-8", errors="replace") as log:
        count, problems = check(log.read())
    for p in problems:
        print(p)
    if count == 0:
        print("no calls logged")
        return 1
    return 1 if problems else 0


sys.exit(main())
