//! Checks of the operator commands' filters, so that a mistyped one is refused instead of answering "nothing
//! found" (or planning under an account that cannot exist).

use autopilot_functions::Function;

/// `--function`: one of the five functions' names.
pub fn function(text: &str) -> Result<String, String> {
    match Function::named(text) {
        Some(function) => Ok(function.name().to_owned()),
        None => Err(format!("{text:?} is not a function (use {})", Function::ALL.map(Function::name).join(", "))),
    }
}

/// `--account`: a 12-digit AWS account id.
pub fn account(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a 12-digit AWS account id"))
    }
}

/// `--region`: an AWS region's shape (`eu-central-1`, `us-gov-west-1`, `cn-north-1`): lower-case words joined by
/// `-`, ending in a number.
pub fn region(text: &str) -> Result<String, String> {
    // The same test as the policy's `targets` regions: a filter a policy would refuse matches nothing.
    if autopilot_shared::policy::targets::is_region(text) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not an AWS region (e.g. eu-central-1)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_what_aws_names_and_refuse_the_rest() {
        assert_eq!(function("pool-scaler"), Ok("pool-scaler".into()));
        assert!(function("Pool-Scaler").unwrap_err().contains("use pool-scaler, builder-scheduler"));
        assert_eq!(account("123456789012"), Ok("123456789012".into()));
        for bad in ["abc", "12345678901", "1234567890123", ""] {
            assert!(account(bad).is_err(), "{bad}");
        }
        for good in ["eu-central-1", "us-gov-west-1", "cn-north-1", "ap-southeast-4"] {
            assert_eq!(region(good), Ok(good.to_owned()));
        }
        for bad in ["moon", "eu-central", "EU-central-1", "eu--1", "-1", "", "mars-north-1"] {
            assert!(region(bad).is_err(), "{bad}");
        }
    }
}
