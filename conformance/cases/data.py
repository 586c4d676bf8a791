"""DATA: values and the odd but real formats meters send, each reported as the meter sent it."""

from __future__ import annotations

from me162.conformance.cases import Case
from me162.conformance.suite import Setup

ODD = Setup(profile="odd_formats")


def value(
    id: str, title: str, purpose: str, reference: str, address: str, label: str, setup: Setup = ODD
) -> Case:
    return Case(
        id, title, purpose, reference, setup, grade="data_set", args={"address": address, "label": label}
    )


CASES = [
    Case("DATA-01", "The ME162 readout exactly", "All nine ME162 data sets, with units, as the meter sent them.",
         "ME162 captures"),
    value("DATA-02", "Full OBIS codes with billing periods",
          "1-0:1.8.0*01.. history values are kept apart from the current value.", "MT174 captures; PRIOR_ART 2.6",
          "1-0:1.8.0*02", "a billing-period value", Setup(profile="mt174")),
    value("DATA-03", "Empty value", "An empty value () is reported as empty, not dropped.",
          "MT174 capture (0-0:C.51.4*255())", "0-0:C.51.4*255", "an empty value"),
    value("DATA-04", "Blank-padded value", "0.0(          18438636) is reported with its padding, as sent.",
          "L+G E350 capture", "0.0", "a blank-padded value"),
    value("DATA-05", "Value of blanks only", "C.1.1(        ) is kept.", "L+G E350 capture", "C.1.1",
          "a value of blanks"),
    value("DATA-06", "Unit inside the value", "1.8.1(024562 kWh) (unit after a space) is kept.",
          "MT171 capture; PRIOR_ART 2.7", "1.8.1", "a unit inside the value"),
    value("DATA-07", "Decimal comma", "1.8.2(000007,4*kW) is kept.", "Kamstrup (pwitab / piggymeter issue 4)",
          "1.8.2", "a decimal comma"),
    value("DATA-08", "Several values for one address", "1.6.2*14(26.60)(1609051415): both values.",
          "IEC 62056-21 6.5 Fig 27; L+G maximum demand", "1.6.2*14", "two values"),
    value("DATA-09", "Several data sets on one line", "0.9.1(..)0.9.2(..) on one line: both data sets.",
          "IEC 62056-21 6.5; Annex C", "0.9.2", "a second data set on a line"),
    value("DATA-10", "Manual reset &F", "1.8.0&12 is kept apart from 1.8.0*12.", "IEC 62056-61 (&F manual reset)",
          "1.8.0&12", "a manual-reset history value"),
    value("DATA-11", "Negative and hex values", "-000073.69*W and A2 are kept.", "EasyMeter Q3D capture",
          "1-0:21.7.255*255", "a negative value"),
    Case("DATA-12", "All odd formats at once", "The whole odd-format readout is reported exactly.",
         "Captures of L+G, Iskra, Kamstrup, EasyMeter", ODD),
]  # fmt: skip
